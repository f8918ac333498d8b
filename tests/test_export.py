"""Exported modules (``evosearch.optim.export``, ``evosearch export``; README, "Export") pass the same
tests as ``to_optimizer``: the library equivalences (equivalence.py), bit-for-bit agreement with the
in-memory optimizer on every reference program, exact resume, LR schedulers, and the fused
(torch.compile) path; and they import nothing but torch."""

from __future__ import annotations

import ast
import copy
import inspect
import itertools
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

import primitives
from evosearch import Const, Program, ProgramError, Statement, Var, reference, to_optimizer
from evosearch.cli import main as cli
from evosearch.lang.kinds import _is_name, check
from evosearch.optim import export_helpers
from evosearch.optim.export import _TILE_EXACT, generate

from equivalence import LIBRARY_CASES, compare, load_exported, make_data, make_model

DATA = make_data()


def train(opt, model, steps=25, schedule=None):
    x, y = DATA
    for step in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[step]), y[step]).backward()
        opt.step()
        if schedule is not None:
            schedule.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("foreach", [None, True], ids=["default", "foreach"])
@pytest.mark.parametrize("name", sorted(LIBRARY_CASES))
def test_exported_matches_library(name, foreach, tmp_path):
    # The default path (one tensor at a time, on CPU) and the foreach path, every step.
    lr, make_ref = LIBRARY_CASES[name]
    cls, _ = load_exported(reference.load(name), tmp_path, "Exported")
    compare(f"export/{name}", lambda ps: cls(ps, lr=lr, foreach=foreach), make_ref)


@pytest.mark.parametrize("name", reference.names())
def test_exported_equals_to_optimizer_bit_for_bit(name, tmp_path):
    # to_optimizer's default is its foreach path; the exported default on CPU is the one-tensor
    # loop: the two paths agree bit for bit, so a user may take either.
    prog = reference.load(name)
    exported, _ = load_exported(prog, tmp_path, "Exported")
    inmemory = to_optimizer(prog)
    for foreach in (None, True, False):
        m1, m2 = make_model(), make_model()
        a = train(exported(m1.parameters(), lr=0.01, foreach=foreach), m1)
        b = train(inmemory(m2.parameters(), lr=0.01, foreach=foreach), m2)
        assert torch.equal(a, b), f"{name} (foreach={foreach})"


def _count_paths(cls):
    """Wrap the two update functions of ``cls``'s module so that each call is counted by path."""
    module = cls.__init__.__globals__
    calls = {"per tensor": 0, "foreach": 0}
    for name, path in (("_update", "per tensor"), ("_update_foreach", "foreach")):
        if name not in module:          # no _update where a global reduction needs all tensors
            continue

        def counted(*args, _function=module[name], _path=path):
            calls[_path] += 1
            return _function(*args)
        module[name] = counted
    return calls


@pytest.mark.parametrize("device, foreach, path", [
    ("cpu", None, "per tensor"), ("cpu", True, "foreach"), ("cpu", False, "per tensor"),
    # the meta device stands for CUDA here: any device but the CPU gets the foreach kernels
    ("meta", None, "foreach"), ("meta", False, "per tensor"),
])
def test_default_path_follows_the_device(device, foreach, path, tmp_path):
    cls, _ = load_exported(reference.load("lion"), tmp_path, "Lion")
    calls = _count_paths(cls)
    params = [nn.Parameter(torch.zeros(s, device=device)) for s in ((4, 3), (3,))]
    for p in params:
        p.grad = torch.ones_like(p)
    opt = cls(params, lr=1e-3, foreach=foreach)
    opt.step()
    opt.step()
    assert calls == {"per tensor": 4 if path == "per tensor" else 0, "foreach": 2 if path == "foreach" else 0}


@pytest.mark.parametrize("name", ["lion", "adamw_torch"])
def test_state_dict_does_not_depend_on_the_path(name, tmp_path):
    # The same state, whichever path ran: a run saved on one device resumes on another.
    cls, _ = load_exported(reference.load(name), tmp_path, "Exported")
    saved = {}
    for foreach in (None, True, False):
        model = make_model()
        opt = cls(model.parameters(), lr=0.01, foreach=foreach)
        train(opt, model, steps=10)
        saved[foreach] = opt.state_dict()

    def hyperparameters(state_dict):
        return [{k: v for k, v in group.items() if k != "foreach"} for group in state_dict["param_groups"]]
    for foreach in (True, False):
        a, b = saved[None], saved[foreach]
        assert hyperparameters(a) == hyperparameters(b)
        assert a["state"].keys() == b["state"].keys()
        for i, state in a["state"].items():
            assert state.keys() == b["state"][i].keys()
            for key, value in state.items():
                other = b["state"][i][key]
                assert torch.equal(value, other) if isinstance(value, torch.Tensor) else value == other, (
                    f"{name}: state {i}[{key!r}] after the default path differs from foreach={foreach}")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", reference.names())
def test_cuda_default_is_foreach_and_equals_per_tensor(name, tmp_path):
    cls, _ = load_exported(reference.load(name), tmp_path, "Exported")
    calls = _count_paths(cls)
    trained = {}
    for foreach in (None, False):
        model = make_model().cuda()
        opt = cls(model.parameters(), lr=0.01, foreach=foreach)
        x, y = DATA
        for step in range(25):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[step].cuda()), y[step].cuda()).backward()
            opt.step()
        trained[foreach] = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert calls["foreach"] == 25
    assert torch.equal(trained[None], trained[False]), f"{name}: CUDA foreach and per-tensor paths differ"


class _NewTensors(TorchDispatchMode):
    """Counts the tensors of ``shape`` that torch ops create: outputs whose memory is none of the
    op's inputs' (an ``out=`` or in-place op returns its argument's)."""

    def __init__(self, shape):
        super().__init__()
        self.shape, self.count = torch.Size(shape), 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        inputs = {t.untyped_storage().data_ptr() for t in torch.utils._pytree.tree_leaves((args, kwargs))
                  if isinstance(t, torch.Tensor)}
        for t in torch.utils._pytree.tree_leaves(result):
            if isinstance(t, torch.Tensor) and t.shape == self.shape and t.untyped_storage().data_ptr() not in inputs:
                self.count += 1
        return result


def _without_reuse(cls):
    """``cls``'s module as it was before buffer reuse: every statement allocates its result."""
    module = cls.__init__.__globals__
    module["_reuse"] = lambda x: None


def test_per_tensor_lion_reuses_dead_tensors(tmp_path):
    # lion-pytorch allocates two tensors of the parameter's size a step; the loop allocated six (one
    # per statement). Now three: interp's result for the update, the product x * (1 - beta2) that m's
    # interp adds into m, and w * weight_decay; sign, + and * write into the update, interp into m.
    prog = reference.load("lion")
    new_tensors = {}
    for reuse in (True, False):
        (tmp_path / str(reuse)).mkdir(exist_ok=True)
        cls, _ = load_exported(prog, tmp_path / str(reuse), "Lion")
        if not reuse:
            _without_reuse(cls)
        p = nn.Parameter(torch.randn(64, 32))
        p.grad = torch.randn(64, 32)
        opt = cls([p], lr=1e-3, foreach=False)
        opt.step()
        m = opt.state[p]["m"]
        with _NewTensors(p.shape) as counted:
            opt.step()
        new_tensors[reuse] = counted.count
        assert (opt.state[p]["m"] is m) == reuse       # the state is updated where it lies
    assert new_tensors == {True: 3, False: 6}


def _bits(x):
    return (x.dtype, tuple(x.shape), x.detach().numpy().tobytes())


def _loop_bits(cls, shapes, steps: int, seed: int = 0) -> list:
    """The bits of the parameters and states after each of ``steps`` steps of ``cls``'s one-tensor
    loop on random gradients, over parameters of ``shapes``."""
    gen = torch.Generator().manual_seed(seed)
    params = [nn.Parameter(torch.randn(s, generator=gen)) for s in shapes]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")             # programs that ignore lr say so
        opt = cls(params, lr=0.01, foreach=False)
    after = []
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen)
        opt.step()
        after.append([_bits(p) for p in params] + [
            (name, _bits(v)) for p in params for name, v in opt.state[p].items() if name != "step"])
    return after


def _assert_reuse_changes_no_bit(prog, tmp_path, class_name="Exported", steps=3):
    """The one-tensor loop gives the same bits, NaNs included, in the parameters and the states after
    each step, with and without buffer reuse, on parameters with and without dimensions (on a 0-d
    one a statement may promote to float64)."""
    trained = []
    for reuse in (True, False):
        (tmp_path / str(reuse)).mkdir(exist_ok=True)
        cls, _ = load_exported(prog, tmp_path / str(reuse), class_name)
        if not reuse:
            _without_reuse(cls)
        trained.append(_loop_bits(cls, ((3,), (2, 3), ()), steps))
    assert trained[0] == trained[1], f"buffer reuse changed the numbers of\n{prog}"


@pytest.mark.parametrize("name", reference.names())
def test_buffer_reuse_changes_no_bit_of_a_reference_program(name, tmp_path):
    _assert_reuse_changes_no_bit(reference.load(name), tmp_path)


def test_states_that_share_a_value_are_not_overwritten(tmp_path):
    # Two state outputs that are one value are one tensor at the next step: writing `x` into `a`'s
    # tensor would change `b` before `b + x` reads it.
    prog = Program.parse("""def train(w, g, a, b, lr):
    x = a * 2.0
    y = b + x
    y = y + g
    u = y * lr
    return u, y, y
""")
    source = generate(prog, "Shared")
    assert "out=_reuse(a)" not in source and "y = torch.add(y, g, out=_reuse(y))" in source
    _assert_same_steps(prog, tmp_path)
    _assert_reuse_changes_no_bit(prog, tmp_path)


# -- tiles: the one-tensor loop on CPU runs a rule whose statements round the same on a slice as on
# the whole tensor over cache-sized tiles (`_TILE`, `_tiles` and `_put` in export_helpers.py)

TILE_SHAPES = ((3,), (7, 3), (), (4, 5, 2), (2, 3))


def _train_tiled(cls, tiled: bool, tile: int, shapes=TILE_SHAPES, steps=3, seed=0):
    """The bits of the parameters and states after each of ``steps`` steps of the one-tensor loop,
    with tiles of ``tile`` elements or (``tiled`` False) on whole tensors, and how many tiles ran."""
    module = cls.__init__.__globals__
    module["_TILED"], module["_TILE"] = tiled, tile
    counted = {"tiles": 0}

    def tiles(*args, _function=module.setdefault("_tiles_unwrapped", module["_tiles"])):
        cut = _function(*args)
        counted["tiles"] += len(cut) if cut is not None else 0
        return cut
    module["_tiles"] = tiles
    return _loop_bits(cls, shapes, steps, seed), counted["tiles"]


def _assert_tiles_change_no_bit(prog, tmp_path, class_name="Exported", tile=5, shapes=TILE_SHAPES):
    """Tiles of an odd size give the same bits as whole tensors, NaNs included, in the parameters and
    the states after each step; and they ran, where the module says it tiles."""
    (tmp_path / "tiles").mkdir(exist_ok=True)
    cls, _ = load_exported(prog, tmp_path / "tiles", class_name)
    if not cls.__init__.__globals__["_TILED"]:
        return False
    whole, _ = _train_tiled(cls, False, tile, shapes)
    tiled, count = _train_tiled(cls, True, tile, shapes)
    assert count > 0, "no tensor was cut into tiles"
    assert tiled == whole, f"tiles changed the numbers of\n{prog}"
    return True


@pytest.mark.parametrize("name", reference.names())
def test_tiles_change_no_bit_of_a_reference_program(name, tmp_path):
    # Every reference program but PowerSign (exp) runs in tiles on CPU.
    assert _assert_tiles_change_no_bit(reference.load(name), tmp_path) == (name != "powersign")


@pytest.mark.parametrize("name", ["lion", "adamw_torch"])
def test_tiles_where_torch_splits_a_tensor_between_threads(name, tmp_path):
    # 100,003 elements are more than torch's grain (32,768), so a kernel on the whole tensor splits it
    # between threads, each ending in a scalar loop; tiles of 4,099 put those ends elsewhere.
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert _assert_tiles_change_no_bit(reference.load(name), tmp_path, tile=4099, shapes=((100003,), (517, 301)))
    finally:
        torch.set_num_threads(threads)


def test_rules_that_would_round_differently_in_tiles_take_whole_tensors(tmp_path):
    tiled = "def train(w, g, m, lr):\n    m = interp(g, m, 0.9)\n    u = sign(m)\n    u = u * lr\n    return u, m\n"
    assert "_TILED = True" in generate(Program.parse(tiled), "Tiled")
    for statement in ("u = tanh(m)", "u = power(m, 0.3)", "u = clip(m, 0.5)", "n = norm(g)\n    u = m * n"):
        source = generate(Program.parse(tiled.replace("u = sign(m)", statement)), "Whole")
        assert "_TILED = False" in source and "takes whole tensors" in source, statement


def test_states_written_into_each_others_tiles(tmp_path):
    # v's tensor receives the new m and m's the new v (each old value is dead there): a tile must not
    # overwrite one state before the other has been read.
    prog = Program.parse("""def train(w, g, m, v, lr):
    a = v + g
    b = m * 0.5
    u = a * lr
    return u, a, b
""")
    source = generate(prog, "Swapped")
    assert "out=_reuse(v)" in source and "out=_reuse(m)" in source
    assert _assert_tiles_change_no_bit(prog, tmp_path)
    swapped = Program.parse("def train(w, g, m, v, lr):\n    u = g * lr\n    return u, v, m\n")
    assert _assert_tiles_change_no_bit(swapped, tmp_path, "Swapped2")


def test_a_tensor_that_is_not_contiguous_is_not_cut(tmp_path):
    cls, _ = load_exported(reference.load("lion"), tmp_path, "Lion")
    module = cls.__init__.__globals__
    module["_TILE"] = 5
    p = nn.Parameter(torch.randn(6, 4).t())                 # a transposed view: not contiguous
    p.grad = torch.randn(4, 6)
    assert module["_tiles"](p, p.grad, (torch.zeros(4, 6),)) is None
    contiguous = nn.Parameter(torch.randn(4, 6))
    assert len(module["_tiles"](contiguous, torch.randn(4, 6), (torch.zeros(4, 6),))) == 5
    assert module["_tiles"](contiguous, torch.randn(4, 6), (torch.zeros(3, 6),)) is None
    assert module["_tiles"](contiguous, torch.randn(4, 6), (0.5,)) is None
    before = p.detach().clone()
    opt = cls([p], lr=0.1)
    opt.step()
    assert not torch.equal(p.detach(), before)


def test_a_0d_parameter_promoted_to_float64_keeps_its_numbers(tmp_path):
    # On a 0-d parameter `max(g, 0.5)` is float64 (both operands 0-d, 0.5 as `_s`'s float64):
    # `h + k` written into h's float32 tensor would round what a new tensor keeps.
    prog = Program.parse("""def train(w, g, m, lr):
    h = g * 2.0
    k = max(g, 0.5)
    y = h + k
    m = interp(y, m, 0.9)
    u = m * lr
    return u, m
""")
    assert "y = torch.add(h, k, out=_reuse(h))" in generate(prog, "Promoted")
    _assert_reuse_changes_no_bit(prog, tmp_path)


def test_every_template_returns_a_new_tensor():
    # Buffer reuse (export.py, `_reusable`) takes a statement's result for a tensor that the
    # one-tensor function owns: a template that returned its argument would make it overwrite an input.
    x, y = torch.randn(3) + 2.0, torch.randn(3) + 2.0
    for name in primitives.names():
        prim = primitives.get(name)
        if prim.reduces is not None:
            continue
        args = [x, y, 0.5][:prim.arity]
        source = prim.source.format(*[f"_a{k}" for k in range(prim.arity)])
        result = eval(source, vars(export_helpers), {f"_a{k}": a for k, a in enumerate(args)})
        storages = {a.untyped_storage().data_ptr() for a in args if isinstance(a, torch.Tensor)}
        assert result.untyped_storage().data_ptr() not in storages, name


def test_reductions_export(tmp_path):
    prog = Program.parse("""def train(w, g, m, lr):
    n = norm(g)
    d = dot(g, m)
    c = cosine_sim(g, m)
    u = clip_by_global_norm(g, 1.0)
    gn = global_norm(g)
    s = d + c
    s = s * 0.01
    u = u + s
    k = n / gn
    u = u * k
    m = interp(g, m, 0.9)
    u = u * lr
    return u, m
""")
    exported, _ = load_exported(prog, tmp_path, "Reduced")
    inmemory = to_optimizer(prog)
    for foreach in (True, False):
        m1, m2 = make_model(), make_model()
        a = train(exported(m1.parameters(), lr=0.05, foreach=foreach), m1)
        b = train(inmemory(m2.parameters(), lr=0.05, foreach=foreach), m2)
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-7)


def test_resume_from_state_dict_is_exact(tmp_path):
    cls, _ = load_exported(reference.load("adamw_torch"), tmp_path, "AdamWx")
    m1 = make_model()
    o1 = cls(m1.parameters(), lr=0.01)
    uninterrupted = train(o1, m1, steps=30)

    m2 = make_model()
    o2 = cls(m2.parameters(), lr=0.01)
    x, y = DATA
    for step in range(15):
        o2.zero_grad()
        nn.functional.cross_entropy(m2(x[step]), y[step]).backward()
        o2.step()
    saved_model, saved_opt = copy.deepcopy(m2.state_dict()), copy.deepcopy(o2.state_dict())
    m3 = make_model()
    m3.load_state_dict(saved_model)
    o3 = cls(m3.parameters(), lr=0.01)
    o3.load_state_dict(saved_opt)
    for step in range(15, 30):
        o3.zero_grad()
        nn.functional.cross_entropy(m3(x[step]), y[step]).backward()
        o3.step()
    resumed = torch.cat([p.detach().flatten() for p in m3.parameters()])
    assert torch.equal(resumed, uninterrupted)


def test_lr_scheduler_feeds_the_program(tmp_path):
    cls, _ = load_exported(reference.load("adam"), tmp_path, "Adamx")
    m1, m2 = make_model(), make_model()
    o1 = cls(m1.parameters(), lr=0.02)
    o2 = torch.optim.Adam(m2.parameters(), lr=0.02)
    a = train(o1, m1, schedule=torch.optim.lr_scheduler.StepLR(o1, step_size=5, gamma=0.5))
    b = train(o2, m2, schedule=torch.optim.lr_scheduler.StepLR(o2, step_size=5, gamma=0.5))
    assert ((a - b).norm() / b.norm()).item() < 1e-5


def test_lion_keeps_lion_pytorch_constructor_shape(tmp_path):
    cls, _ = load_exported(reference.load("lion"), tmp_path, "Lion")
    names = list(inspect.signature(cls.__init__).parameters)
    assert names[:5] == ["self", "params", "lr", "betas", "weight_decay"]
    opt = cls(make_model().parameters(), 1e-4, (0.95, 0.98), 0.1)   # positional, as lion-pytorch
    assert opt.param_groups[0]["betas"] == (0.95, 0.98) and opt.param_groups[0]["weight_decay"] == 0.1
    with pytest.raises(ValueError, match="betas needs 2 values"):
        cls(make_model().parameters(), betas=(0.9,))


def test_module_imports_only_torch_and_documents_the_rule(tmp_path):
    prog = reference.load("lion")
    cls, path = load_exported(prog, tmp_path, "Lion")
    tree = ast.parse(path.read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported == {"torch"}
    doc = ast.get_docstring(tree)
    for line in str(prog).splitlines():
        assert line.strip() in doc
    assert "update = lr*(0.01*w + sign(0.1*g + 0.9*m))" in doc
    assert "betas" in doc and "weight_decay" in doc
    assert "``foreach=None`` (the default)" in doc and "one tensor at a time on CPU" in doc


def test_params_without_grad_are_skipped(tmp_path):
    cls, _ = load_exported(reference.load("lion"), tmp_path, "Lion")
    frozen = nn.Parameter(torch.ones(3))
    model = make_model()
    opt = cls([*model.parameters(), frozen], lr=1e-3)
    train(opt, model, steps=3)
    assert torch.equal(frozen.detach(), torch.ones(3)) and len(opt.state[frozen]) == 0


def test_fused_path_matches_foreach(tmp_path):
    # torch.compile: about 10-20 s on this machine, once.
    cls, _ = load_exported(reference.load("lion"), tmp_path, "Lion")
    m1, m2 = make_model(), make_model()
    a = train(cls(m1.parameters(), lr=1e-3, fused=True), m1, steps=10)
    b = train(cls(m2.parameters(), lr=1e-3), m2, steps=10)
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)


def test_cli_export_and_list(tmp_path, capsys):
    out = tmp_path / "my_lion.py"
    assert cli(["export", "lion", "-o", str(out), "--class-name", "MyLion"]) == 0
    assert "class MyLion(torch.optim.Optimizer)" in out.read_text()
    assert cli(["list-programs"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in reference.names())
    assert cli(["export", "lion", "-o", str(out), "--class-name", "not valid"]) == 2


# -- names: the exported module computes what the program computes, whatever its variables are called

def _steps(cls, shapes=((3,), (2, 3), ()), steps=3, foreach=None):
    """The parameters after each of ``steps`` steps of ``cls`` on fixed gradients, over parameters of
    the given shapes (a 0-d one among them)."""
    gen = torch.Generator().manual_seed(0)
    params = [nn.Parameter(torch.randn(s, generator=gen)) for s in shapes]
    grads = [[torch.randn(s, generator=gen) for s in shapes] for _ in range(steps)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")             # programs that ignore lr say so
        opt = cls(params, lr=0.01, foreach=foreach)
    out = []
    for step_grads in grads:
        for p, gr in zip(params, step_grads):
            p.grad = gr.clone()
        opt.step()
        out.append([p.detach().clone() for p in params])
    return out


def _assert_same_steps(prog, tmp_path, class_name="Exported"):
    exported, path = load_exported(prog, tmp_path, class_name)
    inmemory = to_optimizer(prog, lr_check=False)
    for foreach in (None, False):
        for step, (a, b) in enumerate(zip(_steps(exported, foreach=foreach), _steps(inmemory, foreach=foreach))):
            for x, y in zip(a, b):
                assert torch.allclose(x, y, rtol=1e-6, atol=1e-7, equal_nan=True), (
                    f"step {step + 1} (foreach={foreach}): exported {x} vs to_optimizer {y}\n{prog}\n"
                    f"{path.read_text()}")


def test_a_variable_named_like_an_escaped_one(tmp_path):
    """`torch` was renamed v_torch, onto the program's own v_torch (0.94 against 0.955)."""
    prog = Program.parse("""def train(w, g, m, lr):
    v_torch = g * 0.5
    torch = sign(g)
    u = v_torch + torch
    m = interp(g, m, 0.9)
    u = u * lr
    return u, m
""")
    _assert_same_steps(prog, tmp_path)
    # as state variables, the two names were one argument twice (a SyntaxError on import)
    _assert_same_steps(Program.parse("""def train(w, g, torch, v_torch, lr):
    torch = interp(g, torch, 0.9)
    v_torch = interp(g, v_torch, 0.5)
    u = torch + v_torch
    u = u * lr
    return u, torch, v_torch
"""), tmp_path)
    # `ﬁ` is `fi` to Python (NFKC): a program holding both is refused, not exported as one name
    fi = Program(("w", "g", "lr"), (Statement("ﬁ", "sign", (Var("g"),)),
                                    Statement("fi", "multiply", (Var("ﬁ"), Var("lr")))), ("fi",))
    with pytest.raises(ProgramError, match="not a valid variable name"):
        generate(fi, "Exported")


def test_scalar_statements_and_per_tensor_weights(tmp_path):
    """What the property test below found besides names: `cube` of a number (the module's
    `_finite` took tensors only), an interp weight from a torch._foreach_* call (a tuple, taken
    for one value), and a weight computed from numbers (a 0-d tensor, rounded unlike the float
    the in-memory optimizer has)."""
    _assert_same_steps(Program.parse("""def train(w, g, m, lr):
    c = cube(lr)
    k = tan(-1.5)
    h = g * 0.5
    m = interp(g, m, h)
    u = interp(g, m, k)
    u = u * c
    return u, m
"""), tmp_path)


# Names that the exported module or Python give a meaning: the module's own, the step's locals, the
# hyperparameters' flat names, builtins, soft keywords, escaped-looking names, and non-ASCII ones.
ADVERSARIAL = ["torch", "v_torch", "v_v_torch", "math", "warnings", "self", "p", "params", "group", "state",
               "state_0", "grads", "update", "new_states", "results", "loss", "closure", "by_step", "beta1",
               "beta2", "v_beta1", "weight_decay", "lr_", "x", "i", "_", "_a0", "_s", "_div", "_interp",
               "_update", "_compiled_step", "_DIV_EPS", "len", "zip", "range", "float", "print", "type",
               "match", "case", "v_", "v", "m", "Exported", "__class__", "π", "é", "変数", "mé"]
NAMES = st.one_of(st.sampled_from(ADVERSARIAL), st.sampled_from(ADVERSARIAL), st.sampled_from(ADVERSARIAL),
                  st.from_regex(r"[a-z_][a-z0-9_]{0,3}", fullmatch=True)).filter(
    lambda n: _is_name(n) and n not in primitives.CONSTANTS and n not in ("w", "g", "lr", "t"))
OPS = primitives.names()
_EXAMPLES = itertools.count()


@st.composite
def adversarially_named_programs(draw, ops=OPS):
    """A well-kinded program whose states and variables take a few names from NAMES, each with
    its escaped-looking twin (``torch`` and ``v_torch``), each statement mostly reading recent
    values and the update the last one, so that most statements are live."""
    bases = draw(st.lists(NAMES, min_size=1, max_size=2, unique=True))
    vocabulary = bases + ["v_" + n for n in bases]
    states = draw(st.lists(st.sampled_from(vocabulary), max_size=2, unique=True))
    inputs = ("w", "g", *states, "lr") + (("t",) if draw(st.booleans()) else ())
    kinds_of = {n: (primitives.SCALAR if n in ("lr", "t") else primitives.TENSOR) for n in inputs}
    tensor_kind = primitives.TENSOR
    recent = ["g", *states]
    statements = []
    for _ in range(draw(st.integers(1, 8))):
        prim = primitives.get(draw(st.sampled_from(ops)))
        args = []
        for want in prim.arg_kinds:
            if want != tensor_kind and draw(st.integers(0, 3)) == 0:
                args.append(Const(draw(st.sampled_from([0.5, 0.9, -1.5, 2.0]))))
                continue
            pool = [n for n in recent[-3:] if want != tensor_kind or kinds_of[n] == tensor_kind]
            if not pool or draw(st.integers(0, 3)) == 0:
                pool = sorted(n for n, k in kinds_of.items() if want != tensor_kind or k == tensor_kind)
            args.append(Var(draw(st.sampled_from(pool))))
        target = draw(st.sampled_from(vocabulary))
        statements.append(Statement(target, prim.name, tuple(args)))
        kinds_of[target] = prim.result(tuple(kinds_of[a.name] if isinstance(a, Var) else primitives.SCALAR
                                             for a in args))
        recent.append(target)
    tensors = [n for n in reversed(recent) if kinds_of[n] == tensor_kind]
    outputs = (tensors[0],) + tuple(draw(st.sampled_from(tensors[:3])) for _ in states)
    prog = Program(inputs, tuple(statements), outputs)
    check(prog)
    return prog


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(prog=adversarially_named_programs())
def test_exported_steps_equal_to_optimizer_whatever_the_names(prog, tmp_path):
    # a new module name per example: a module file rewritten within the same second at the same
    # size would be imported from its stale bytecode
    name = f"Exported{next(_EXAMPLES)}"
    _assert_same_steps(prog, tmp_path, name)
    if not any(primitives.get(s.op).reduces == "global" for s in prog.statements):   # no one-tensor loop
        _assert_reuse_changes_no_bit(prog, tmp_path, name)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(prog=adversarially_named_programs(ops=sorted(_TILE_EXACT)), tile=st.sampled_from([2, 5, 7]))
def test_tiles_change_no_bit_of_random_rules(prog, tile, tmp_path):
    # Rules of the primitives that tile exactly, at odd tile sizes, on small tensors and (tiles of
    # 4,099) on one that torch splits between threads (100,003 elements, more than its grain).
    name = f"Tiled{next(_EXAMPLES)}"
    assert _assert_tiles_change_no_bit(prog, tmp_path, name, tile)
    assert _assert_tiles_change_no_bit(prog, tmp_path, name + "Large", 4099, shapes=((100003,),))
