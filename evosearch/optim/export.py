"""``evosearch export``: write a program as a standalone, readable optimizer module.

The module imports only torch. It holds the update rule three ways, all generated from the same
compiled program: ``_update`` (one parameter tensor at a time, the readable form; absent when the
program uses a global reduction; a statement writes its result into a tensor that it reads last
where that is safe, ``_reusable``), ``_update_foreach`` (all tensors of a group at once with
``torch._foreach_*`` kernels) and a ``torch.compile``-fused step (``fused=True``), which moves about
as many bytes as the update must. By default (``foreach=None``) a step takes the faster exact path for
the parameters' device, as torch.optim does: one tensor at a time on CPU, foreach elsewhere
(``_use_foreach`` in export_helpers.py; the figures are in the generated docstring). On CPU the
one-tensor loop runs in cache-sized tiles where every statement rounds the same on a slice of a
tensor as on the whole (``tiles_exactly``; ``_tiles`` in export_helpers.py). Constructor
arguments follow ``hyperparams.py``. ``generate`` writes the module in named parts: the docstring, the
update functions, the fused step, the class.
"""

from __future__ import annotations

import builtins
import keyword
import re
import textwrap
from pathlib import Path

from evosearch.lang.ir import GRAD, LR, STEP, WEIGHT
from evosearch.lang.kinds import check, kinds
from evosearch.lang.liveness import needed_statements
from evosearch.lang.program import Program
from evosearch.lang.pruning import follows_lr
from evosearch.symbolic.forms import math_text
from primitives import TENSOR

from . import hyperparams
from .compiled import CompiledProgram
from .optimizer import LR_IGNORED

_HELPERS = (Path(__file__).parent / "export_helpers.py").read_text()


def _hyper_args(spec: hyperparams.HyperSpec) -> list[str]:
    """Flat names of the hyperparameters inside the generated functions (beta1, beta2, ...)."""
    names = []
    for key, default in spec.defaults.items():
        if isinstance(default, tuple):
            names += [f"beta{k + 1}" if key == "betas" else f"{key}{k}" for k in range(len(default))]
        else:
            names.append(key)
    return names


# Names with a meaning in an exported module, besides the helpers' (which start with `_`): what it
# imports (and math, kept free for helpers), the step's own names, and what Python gives a meaning.
_MODULE_NAMES = frozenset({"torch", "warnings", "math", "self", "params", "p", "group", "state", "x"})
_RESERVED = _MODULE_NAMES | frozenset(dir(builtins)) | frozenset(keyword.kwlist) | frozenset(keyword.softkwlist)
_ESCAPE = "v_"


class _Names:
    """Program variable -> Python identifier in the generated module, one to one: a name in
    ``reserved``, or starting with `_` (the helpers' names) or with the escape prefix `v_`, gets
    the prefix; every other name is kept. So `torch` becomes `v_torch` and a variable `v_torch`
    becomes `v_v_torch`: no two variables, and no variable and a name of the module, meet. (Program
    names are NFKC-normal, ``kinds.check``, so Python reads each identifier as written.)"""

    def __init__(self, reserved: set[str]):
        self.reserved = reserved

    def __call__(self, name: str) -> str:
        if name in (WEIGHT, GRAD, LR, STEP):
            return name
        if name in self.reserved or name.startswith(("_", _ESCAPE)):
            return _ESCAPE + name
        return name


def _render_ref(ref, names, spec_names) -> str:
    if ref[0] == "var":
        return names(ref[1])
    if ref[0] == "const":
        return repr(ref[1])
    key, idx = ref[1], ref[2]
    return spec_names[(key, idx)]


def _wrap_scalar(template: str, rendered: list[str], per_param: tuple[bool, ...]) -> list[str]:
    # torch.* functions need tensors: scalar arguments go through _s (helpers do this themselves).
    if template.startswith("torch.") or "torch." in template.split("{")[0]:
        return [r if pp else f"_s({r})" for r, pp in zip(rendered, per_param)]
    return rendered


def generate(prog: Program, class_name: str, lr: float = 1e-3) -> str:
    """The source of a module defining ``class_name``, a ``torch.optim.Optimizer`` that trains with
    ``prog`` (see the module docstring); ``lr`` is the constructor's default learning rate."""
    if not class_name.isidentifier() or keyword.iskeyword(class_name):
        raise ValueError(f"class name {class_name!r} is not a Python identifier")
    check(prog)                       # names Python reads as written (identifiers, NFKC-normal)
    spec = hyperparams.infer(prog)
    compiled = CompiledProgram(prog, spec.bindings)
    names = _ModuleNames(prog, spec)
    has_global = any(st.prim.reduces == "global" for st in compiled.steps)
    follows = follows_lr(prog)
    per_tensor, multi = _statements(compiled, names)
    tiled = tiles_exactly(compiled)         # never with a global reduction, which is not in _TILE_EXACT
    return "".join([
        _docstring(prog, spec, class_name, lr, follows, has_global, tiled),
        "\nimport torch\n\n\n" if follows else "\nimport warnings\n\nimport torch\n\n\n", _HELPERS, "\n",
        _update_functions(prog, compiled, names, per_tensor, multi, has_global),
        _fused_step(names, has_global),
        "_compiled_step = None\n",
        f"_TILED = {tiled}      # see the module docstring\n\n\n",
        _optimizer_class(prog, spec, names, class_name, lr, has_global, follows),
    ])


_IND = "    "

# Primitives whose torch kernels give the same bits on any slice of a tensor as on the whole: each
# rounds once per element, the same way in torch's vector loops and in the scalar loops that finish
# a range (IEEE + - * /, sqrt; sign and abs are exact). A kernel like tanh, exp or pow is computed
# differently in the two loops (SLEEF against libm), so cutting a tensor into tiles moves the
# elements that the scalar loop computes and changes some results in the last bit; max, min and clip
# pick between -0 and +0 differently in the two loops (which `reciprocal` turns into -1e8 and 1e8);
# reductions need the whole tensor. Checked on random programs at odd tile sizes
# (tests/test_export.py), which found the zeros.
_TILE_EXACT = frozenset({
    "add", "subtract", "multiply", "divide", "negative", "interp",
    "abs", "sqrt", "square", "cube", "sign", "reciprocal", "invert",
})


def tiles_exactly(compiled: CompiledProgram) -> bool:
    """Whether the one-tensor loop may run ``compiled`` over tiles of a tensor and get the same
    numbers bit for bit: every statement on tensors is one of ``_TILE_EXACT`` (statements on scalars
    only give the same number for every tile)."""
    return all(st.prim.name in _TILE_EXACT for st in compiled.steps if any(st.per_param))


class _ModuleNames:
    """The identifiers of the generated module: program variables (``_Names``), the state
    variables, the flat names of the hyperparameters (``beta1``, ``weight_decay``) and the
    signature of the update functions."""

    def __init__(self, prog: Program, spec: hyperparams.HyperSpec):
        self.hargs = _hyper_args(spec)
        self.spec_names = {}                  # (hyperparameter, index or None) -> flat name
        for key, default in spec.defaults.items():
            if isinstance(default, tuple):
                for k in range(len(default)):
                    self.spec_names[(key, k)] = f"beta{k + 1}" if key == "betas" else f"{key}{k}"
            else:
                self.spec_names[(key, None)] = key
        self.var = _Names(_RESERVED | set(self.hargs))
        self.states = [self.var(s) for s in prog.state_names]
        self.signature = ", ".join([WEIGHT, GRAD] + self.states + [LR, STEP] + self.hargs)
        self.state_args = [f"state_{i}" for i in range(len(self.states))]


# Statements of the one-tensor function that may write their result into a tensor that they read
# last (`_reusable`), with `out=`. Each form runs the template's own kernels, so the numbers are the
# same bit for bit: Python's `x + y` is torch.add(x, y), and `c * x`, a number first, is
# x.__rmul__(c), torch.mul(x, c); `_interp` takes `out` itself.
_BINARY = {"add": "torch.add", "multiply": "torch.mul", "subtract": "torch.sub"}
# Templates that are a chain of one-argument torch functions of {0} (`torch.sqrt(torch.abs({0}))`):
# each call takes `out=`.
_UNARY_CHAIN = re.compile(r"((?:torch\.\w+\()+)\{0\}(\)+)")


def _unary_chain(tmpl: str) -> list[str] | None:
    chain = _UNARY_CHAIN.fullmatch(tmpl)
    if chain is None or chain.group(1).count("(") != len(chain.group(2)):
        return None
    return chain.group(1).split("(")[:-1]


def _in_place_positions(st) -> tuple[int, ...]:
    """The arguments of ``st`` whose tensor its in-place form (``_in_place``) may write into."""
    name = st.prim.name
    if name in ("add", "multiply", "interp") or (name == "subtract" and st.per_param[0]):
        return (0, 1)
    if name == "negative" or _unary_chain(st.prim.source):
        return (0,)
    return ()


def _in_place(st, rendered: list[str], buffer: str) -> str:
    """``st`` with its result written into ``buffer``, one of its arguments (``_in_place_positions``)
    that nothing reads after it, where ``_reuse`` lets it."""
    out = f"out=_reuse({buffer})"
    name = st.prim.name
    if name in _BINARY:
        first, second = rendered if st.per_param[0] else rendered[::-1]
        return f"{_BINARY[name]}({first}, {second}, {out})"
    if name == "negative":
        return f"torch.neg({rendered[0]}, {out})"
    if name == "interp":
        return f"_interp({', '.join(rendered)}, {out})"
    expr = rendered[0]
    for fn in reversed(_unary_chain(st.prim.source)):
        expr = f"{fn}({expr}, {out})"
    return expr


def _reusable(prog: Program, compiled: CompiledProgram) -> dict[int, tuple[int, str]]:
    """Which statements of the one-tensor function may write their result into an argument's tensor:
    step index -> (argument position, variable). Last-use liveness on the compiled steps: the
    argument's value is read by no later step and is no output; it is a tensor with the parameter's
    shape (kind ``tensor``; the target too); and it is one the function owns: a result of an earlier
    step (every template returns a new tensor, tests/test_export.py checks), or a state input, where
    no two state outputs are one value (else two states would be one tensor at the next step). Never
    ``w`` or ``g``, which the caller still reads."""
    envs = kinds(prog)
    lines = needed_statements(prog)          # the program's statement of each compiled step
    defs = {name: ("in", name) for name in prog.inputs}
    reads = []
    for i, st in enumerate(compiled.steps):
        reads.append([defs[r[1]] if r[0] == "var" else None for r in st.refs])
        defs[st.target] = ("step", i)
    last_read = {}
    for i, step_reads in enumerate(reads):
        for d in step_reads:
            last_read[d] = i
    end = len(compiled.steps)
    state_outputs = [defs[name] for name in prog.outputs[1:]]
    for name in prog.outputs:
        last_read[defs[name]] = end
    owned = {("in", s) for s in prog.state_names} if len(set(state_outputs)) == len(state_outputs) else set()
    reuse = {}
    for i, st in enumerate(compiled.steps):
        env, after = envs[lines[i]], envs[lines[i] + 1]
        if st.prim.reduces is None and after[st.target] == TENSOR:
            for pos in _in_place_positions(st):
                ref, d = st.refs[pos], reads[i][pos]
                if d in owned and last_read[d] == i and env[ref[1]] == TENSOR:
                    reuse[i] = (pos, ref[1])
                    break
            owned.add(("step", i))
    return reuse


def _statements(compiled: CompiledProgram, names: _ModuleNames) -> tuple[list[str], list[str]]:
    """Each compiled statement as a line of the one-tensor function (written into a dead argument's
    tensor where ``_reusable`` allows) and as a line of the multi-tensor function (a
    ``torch._foreach_*`` call where the primitive has one)."""
    per_tensor, multi = [], []
    reuse = _reusable(compiled.program, compiled)
    for i, st in enumerate(compiled.steps):
        rendered = [_render_ref(r, names.var, names.spec_names) for r in st.refs]
        target = names.var(st.target)
        tmpl = st.prim.source
        if tmpl is None:
            raise ValueError(f"primitive {st.prim.name!r} has no source form and cannot be exported")
        # on scalars only: a Python number, as the in-memory optimizer has it (a function of the
        # template may give a 0-d tensor; arithmetic on numbers gives a number)
        if st.prim.reduces is None and not any(st.per_param):
            expr = tmpl.format(*_wrap_scalar(tmpl, rendered, st.per_param))
            line = f"{target} = _num({expr})" if re.search(r"\w\(", tmpl) else f"{target} = {expr}"
            per_tensor.append(line)
            multi.append(line)
            continue
        # one tensor at a time
        if i in reuse:
            per_tensor.append(f"{target} = {_in_place(st, rendered, names.var(reuse[i][1]))}")
        elif st.prim.reduces is None:
            per_tensor.append(f"{target} = {tmpl.format(*_wrap_scalar(tmpl, rendered, st.per_param))}")
        else:
            lists = [f"[{r}]" for r in rendered]
            per_tensor.append(f"{target} = {tmpl.format(*lists)}[0]")
        # all tensors at once
        if st.prim.reduces is not None:
            lists = [r if pp else f"[{r}] * len({WEIGHT})" for r, pp in zip(rendered, st.per_param)]
            multi.append(f"{target} = {tmpl.format(*lists)}")
        elif st.foreach and st.prim.foreach_source:
            multi.append(f"{target} = {st.prim.foreach_source}({', '.join(rendered)})")
        else:
            loop = [f"_a{k}" for k, pp in enumerate(st.per_param) if pp]
            src = [f"_a{k}" if pp else r for k, (r, pp) in enumerate(zip(rendered, st.per_param))]
            src = _wrap_scalar(tmpl, src, tuple(True if pp else False for pp in st.per_param))
            zipped = ", ".join(r for r, pp in zip(rendered, st.per_param) if pp)
            iterator = f"zip({zipped})" if len(loop) > 1 else zipped
            multi.append(f"{target} = [{tmpl.format(*src)} for {', '.join(loop)} in {iterator}]")
    return per_tensor, multi


# Why the default path is what it is (experiments/results/benchmarks.md, "Export: Lion step time").
_PATHS_DOC = """\
``foreach=None`` (the default) chooses the path at each step from the parameters' device, as
torch.optim does: one tensor at a time on CPU, where torch's multi-tensor kernels loop over the
tensors anyway and run each statement over the whole group before the next, and the multi-tensor
``torch._foreach_*`` kernels on CUDA and other devices, where one launch serves many tensors. (Lion,
9.4M parameters: on CPU the loop took 0.34 to 0.92 times the foreach path's time per step; on an
H200 the foreach path took about 0.3 times the loop's and 0.33 to 0.37 times lion-pytorch's.)
``foreach=True`` or ``False`` forces one path; the two compute the same numbers (bit for bit for
every reference program, on CPU and CUDA)."""
_TILED_DOC = """
On CPU the loop cuts a tensor of more than 131,072 elements into tiles of that many (``_TILE``) and
runs every statement on a tile before the next, so that the temporaries stay in the CPU's cache:
every statement of this rule on tensors rounds the same on a slice as on the whole tensor, so the
numbers are the same bit for bit. (Lion, 9.4M parameters, a 2-core x86-64 CPU: 0.82 to 0.94
times the whole-tensor loop's time per step, 0.96 to 1.11 times lion-pytorch's in most runs.)"""
_UNTILED_DOC = """
This rule's loop takes whole tensors: a statement on tensors of it (a transcendental function, a power
or a reduction) can round differently on a slice of a tensor than on the whole, so it cannot be cut
into cache-sized tiles without changing the numbers (see ``_TILE``)."""
_GLOBAL_PATHS_DOC = """\
The rule reduces over all tensors of a group at once, so every step takes the multi-tensor
``torch._foreach_*`` path, whatever ``foreach`` says."""


def _docstring(prog: Program, spec: hyperparams.HyperSpec, class_name: str, lr: float, follows: bool,
               has_global: bool, tiled: bool) -> str:
    """The module docstring: the program, its math, the constructor's arguments and the paths a step
    can take."""
    program_text = "\n".join("    " + line for line in str(prog).splitlines())
    math = "\n".join("    " + line for line in math_text(prog).splitlines())
    defaults = ", ".join(f"{k}={v!r}" for k, v in hyperparams.constructor_defaults(spec).items())
    warning = "" if follows else "\n" + "\n".join(textwrap.wrap(LR_IGNORED, 99)) + "\n"
    return f'''"""{class_name}: an optimizer exported by evosearch.

The update rule, in evosearch's program language (the optimizer does w <- w - update; every state
variable starts at zero; lr is the param group's learning rate, t the 1-based step count):

{program_text}
Its math (guards of the division, sqrt and log omitted):

{math}

Constructor: ``{class_name}(params, lr={lr!r}{', ' + defaults if defaults else ''}, *, foreach=None, fused=False)``.
{_hyper_doc(spec)}
{_GLOBAL_PATHS_DOC if has_global else _PATHS_DOC + (_TILED_DOC if tiled else _UNTILED_DOC)}
``fused=True`` compiles the step with torch.compile (slow first step, then the fastest on CPU and
GPU; the same numbers up to rounding).
{warning}"""
'''


def _update_functions(prog: Program, compiled: CompiledProgram, names: _ModuleNames,
                      per_tensor: list[str], multi: list[str], has_global: bool) -> str:
    """``_update`` (one tensor; absent when a global reduction needs every tensor at once) and
    ``_update_foreach`` (lists of tensors), each returning (update, new states)."""
    outs = [names.var(o) for o in prog.outputs]
    copies = [f"[x.clone() for x in {o}]" if c else o for o, c in zip(outs[1:], compiled.copy_output)]
    copies1 = [f"{o}.clone()" if c else o for o, c in zip(outs[1:], compiled.copy_output)]
    reuse_doc = ("\n" + _IND + "(``out=_reuse(x)``: the result goes into x's tensor, which nothing reads afterwards.)"
                 if any("out=_reuse(" in line for line in per_tensor) else "")
    per_tensor_fn = (
        f"def _update({names.signature}):\n"
        f"{_IND}\"\"\"The update rule for one parameter tensor; returns (update, new states).{reuse_doc}\"\"\"\n"
        + "".join(f"{_IND}{line}\n" for line in per_tensor)
        + f"{_IND}return {', '.join([outs[0]] + copies1)}{',' if not copies1 else ''}\n") if not has_global else ""
    multi_fn = (
        f"def _update_foreach({names.signature}):\n"
        f"{_IND}\"\"\"The update rule for lists of tensors (one per parameter).\"\"\"\n"
        + "".join(f"{_IND}{line}\n" for line in multi)
        + f"{_IND}return {outs[0]}, [{', '.join(copies)}]\n")
    return f"\n{per_tensor_fn}\n\n{multi_fn}\n\n"


def _fused_step(names: _ModuleNames, has_global: bool) -> str:
    """``_fused_step``: a whole in-place step for ``torch.compile`` to fuse."""
    states = names.state_args
    fused_sig = ", ".join([WEIGHT, GRAD] + states + [LR, STEP] + names.hargs)
    if has_global:
        call_args = ", ".join([WEIGHT, GRAD] + states + ["lr", "t"] + names.hargs)
        body = (f"{_IND}update, new_states = _update_foreach({call_args})\n"
                f"{_IND}torch._foreach_sub_({WEIGHT}, update)\n"
                f"{_IND}for olds, news in zip([{', '.join(states)}], new_states):\n"
                f"{_IND * 2}torch._foreach_copy_(olds, news)\n")
    else:
        per_args = ", ".join([f"{WEIGHT}[i]", f"{GRAD}[i]"] + [f"{s}[i]" for s in states] + [LR, STEP] + names.hargs)
        body = (f"{_IND}for i in range(len({WEIGHT})):\n"
                f"{_IND * 2}update, *new_states = _update({per_args})\n"
                f"{_IND * 2}{WEIGHT}[i].sub_(update)\n"
                + "".join(f"{_IND * 2}state_{k}[i].copy_(new_states[{k}])\n" for k in range(len(states))))
    return (f"def _fused_step({fused_sig}):\n"
            f"{_IND}\"\"\"A whole in-place step, written so that torch.compile can fuse it into one pass.\"\"\"\n"
            f"{body}\n\n")


def _optimizer_class(prog: Program, spec: hyperparams.HyperSpec, names: _ModuleNames, class_name: str,
                     lr: float, has_global: bool, follows: bool) -> str:
    """The optimizer class: constructor checks, per-parameter state, and ``step`` choosing the fused,
    one-tensor or multi-tensor path."""
    ind, states, hargs = _IND, names.state_args, names.hargs
    arguments = hyperparams.constructor_defaults(spec)
    decoupled = hyperparams.decoupled_decay(spec)
    defaults = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
    init_sig = f"self, params, lr={lr!r}" + (f", {defaults}" if defaults else "")
    unpack = []
    for key, default in arguments.items():
        if isinstance(default, tuple):
            unpack.append(f"{', '.join(names.spec_names[(key, k)] for k in range(len(default)))}"
                          f"{',' if len(default) == 1 else ''} = group[{key!r}]")
        else:
            unpack.append(f"{key} = group[{key!r}]")
    hyper_kwargs = ", ".join(f"{k}={k}" for k in arguments)
    checks = [] if follows else [f"        warnings.warn({class_name + ': ' + LR_IGNORED!r}, UserWarning, stacklevel=2)"]
    for key, default in arguments.items():
        if isinstance(default, tuple):
            checks.append(f"        {key} = tuple(float(b) for b in {key})\n"
                          f"        if len({key}) != {len(default)}:\n"
                          f"            raise ValueError(f\"{key} needs {len(default)} values, got {{len({key})}}\")")
        else:
            checks.append(f"        {key} = float({key})")
    gather_states = "".join(
        f"{ind * 4}state_{i} = [self.state[p][{s!r}] for p in params]\n" for i, s in enumerate(prog.state_names))
    call_args = ", ".join(["params", "grads"] + states + ["lr", "t"] + hargs)
    tensor_args = ", ".join(["_s(lr)", "_s(t)"] + [f"_s({h})" for h in hargs])
    state_names = repr(tuple(prog.state_names))
    # one tensor at a time, each updated before the next is computed (a global reduction needs them all)
    per_args = ", ".join(["p", "gr"] + [f"s{k}" for k in range(len(states))] + ["lr", "t"] + hargs)
    tile_states = f"({', '.join(f's{k}' for k in range(len(states)))}{',' if len(states) == 1 else ''})"
    tile_args = ", ".join(["wt", "gt"] + [f"st[{k}]" for k in range(len(states))] + ["lr", "t"] + hargs)
    per_tensor = (
        f"{ind * 4}if not _use_foreach(group[\"foreach\"], params):\n"
        f"{ind * 5}for p, gr{''.join(f', s{k}' for k in range(len(states)))} in "
        f"zip(params, grads{''.join(f', state_{k}' for k in range(len(states)))}):\n"
        f"{ind * 6}tiles = _tiles(p, gr, {tile_states}) if _TILED else None\n"
        f"{ind * 6}if tiles is not None:    # every statement on a tile before the next: see _TILE\n"
        f"{ind * 7}for wt, gt, st in tiles:\n"
        f"{ind * 8}update, *new_states = _update({tile_args})\n"
        f"{ind * 8}wt.sub_(update)\n"
        f"{ind * 8}_put(st, new_states)\n"
        f"{ind * 7}continue\n"
        f"{ind * 6}update, *new_states = _update({per_args})\n"
        f"{ind * 6}p.sub_(update)\n"
        f"{ind * 6}for name, v in zip({state_names}, new_states):\n"
        f"{ind * 7}self.state[p][name] = v\n"
        f"{ind * 5}continue\n")
    decay = (f"{ind * 4}if weight_decay:      # decoupled, as torch.optim.AdamW\n"
             f"{ind * 5}torch._foreach_mul_(params, 1.0 - lr * weight_decay)\n") if decoupled else ""
    return f'''class {class_name}(torch.optim.Optimizer):
    def __init__({init_sig}, *, foreach=None, fused=False):
        if not lr >= 0.0:
            raise ValueError(f"invalid learning rate: {{lr}}")
{chr(10).join(checks)}
        defaults = dict(lr=lr{', ' + hyper_kwargs if hyper_kwargs else ''}, foreach=foreach, fused=fused)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        global _compiled_step
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr = group["lr"]
{"".join(f"{ind * 3}{line}{chr(10)}" for line in unpack)}            by_step = {{}}
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("{class_name} does not support sparse gradients")
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
{"".join(f"{ind * 5}state[{s!r}] = torch.zeros_like(p, memory_format=torch.preserve_format){chr(10)}" for s in prog.state_names)}                state["step"] = int(state["step"]) + 1
                by_step.setdefault(state["step"], []).append(p)
            for t, params in by_step.items():
                t = float(t)
                grads = [p.grad for p in params]
{decay}{gather_states}                if group["fused"]:
                    if _compiled_step is None:
                        _compiled_step = torch.compile(_fused_step, dynamic=False)
                    _compiled_step(params, grads, {', '.join(states) + ', ' if states else ''}{tensor_args})
                    continue
{"" if has_global else per_tensor}                update, new_states = _update_foreach({call_args})
                torch._foreach_sub_(params, update)
                for name, values in zip({state_names}, new_states):
                    for p, v in zip(params, values):
                        self.state[p][name] = v
        return loss
'''


def _hyper_doc(spec: hyperparams.HyperSpec) -> str:
    parts = ["``lr`` feeds the program's ``lr`` input."]
    if "betas" in spec.defaults:
        parts.append("``betas`` are the weights of the program's ``interp`` moving averages, in the order "
                     "the statements run.")
    if "weight_decay" in spec.defaults:
        parts.append("``weight_decay`` is the constant the program multiplies ``w`` by.")
    else:
        parts.append("``weight_decay`` (default 0) is decoupled: each step first multiplies the weights by "
                     "``1 - lr * weight_decay``, as torch.optim.AdamW does.")
    parts.append("Every other constant is part of the rule.")
    return " ".join(parts)


def export(prog: Program, path: str | Path, class_name: str, lr: float = 1e-3) -> Path:
    """Write ``generate(prog, class_name, lr)`` to ``path``."""
    path = Path(path)
    path.write_text(generate(prog, class_name, lr))
    return path
