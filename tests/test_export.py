"""Exported modules (``evosearch.optim.export``, ``evosearch export``; README, "Export") pass the same
tests as ``to_optimizer``: the library equivalences (equivalence.py), bit-for-bit agreement with the
in-memory optimizer on every reference program, exact resume, LR schedulers, and the fused
(torch.compile) path; and they import nothing but torch."""

from __future__ import annotations

import ast
import copy
import inspect

import pytest
import torch
from torch import nn

from evosearch import Program, reference, to_optimizer
from evosearch.cli import main as cli

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


@pytest.mark.parametrize("name", sorted(LIBRARY_CASES))
def test_exported_matches_library(name, tmp_path):
    # The default (foreach) path, every step; the per-tensor path is checked bit for bit against
    # to_optimizer below, which test_reference checks against the libraries on both paths.
    lr, make_ref = LIBRARY_CASES[name]
    cls, _ = load_exported(reference.load(name), tmp_path, "Exported")
    compare(f"export/{name}", lambda ps: cls(ps, lr=lr), make_ref)


@pytest.mark.parametrize("name", reference.names())
def test_exported_equals_to_optimizer_bit_for_bit(name, tmp_path):
    prog = reference.load(name)
    exported, _ = load_exported(prog, tmp_path, "Exported")
    inmemory = to_optimizer(prog)
    for foreach in (True, False):
        m1, m2 = make_model(), make_model()
        a = train(exported(m1.parameters(), lr=0.01, foreach=foreach), m1)
        b = train(inmemory(m2.parameters(), lr=0.01, foreach=foreach), m2)
        assert torch.equal(a, b), f"{name} (foreach={foreach})"


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
