"""``evosearch export``: write a program as a standalone, readable optimizer module.

The module imports only torch. It holds the update rule three ways, all generated from the same
compiled program: ``_update`` (one parameter tensor at a time, the readable form; absent when the
program uses a global reduction), ``_update_foreach`` (all tensors of a group at once with
``torch._foreach_*`` kernels) and a ``torch.compile``-fused step (``fused=True``), which moves about
as many bytes as the update must. Constructor arguments follow ``evosearch.hyperparams``.
"""

from __future__ import annotations

import keyword
from pathlib import Path

from . import hyperparams
from .compiled import CompiledProgram
from evosearch.lang.ir import GRAD, LR, STEP, WEIGHT
from evosearch.lang.program import Program
from evosearch.symbolic.forms import math_text

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


class _Names:
    """Program variable -> Python identifier in the generated module (avoiding its own names)."""

    def __init__(self, reserved: set[str]):
        self.reserved = reserved

    def __call__(self, name: str) -> str:
        if name in (WEIGHT, GRAD, LR, STEP):
            return name
        if name in self.reserved or name.startswith("_") or keyword.iskeyword(name):
            return f"v_{name}"
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
    if not class_name.isidentifier() or keyword.iskeyword(class_name):
        raise ValueError(f"class name {class_name!r} is not a Python identifier")
    spec = hyperparams.infer(prog)
    compiled = CompiledProgram(prog, spec.bindings)
    hargs = _hyper_args(spec)
    spec_names = {}
    for key, default in spec.defaults.items():
        if isinstance(default, tuple):
            for k in range(len(default)):
                spec_names[(key, k)] = f"beta{k + 1}" if key == "betas" else f"{key}{k}"
        else:
            spec_names[(key, None)] = key
    names = _Names({"torch"} | set(hargs))
    states = [names(s) for s in prog.state_names]
    sig = ", ".join([WEIGHT, GRAD] + states + [LR, STEP] + hargs)
    has_global = any(st.prim.reduces == "global" for st in compiled.steps)

    per_tensor, multi = [], []
    for st in compiled.steps:
        rendered = [_render_ref(r, names, spec_names) for r in st.refs]
        target = names(st.target)
        tmpl = st.prim.source
        if tmpl is None:
            raise ValueError(f"primitive {st.prim.name!r} has no source form and cannot be exported")
        # one tensor at a time
        if st.prim.reduces is None:
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
        elif any(st.per_param):
            loop = [f"_a{k}" for k, pp in enumerate(st.per_param) if pp]
            src = [f"_a{k}" if pp else r for k, (r, pp) in enumerate(zip(rendered, st.per_param))]
            src = _wrap_scalar(tmpl, src, tuple(True if pp else False for pp in st.per_param))
            zipped = ", ".join(r for r, pp in zip(rendered, st.per_param) if pp)
            iterator = f"zip({zipped})" if len(loop) > 1 else zipped
            multi.append(f"{target} = [{tmpl.format(*src)} for {', '.join(loop)} in {iterator}]")
        else:
            multi.append(f"{target} = {tmpl.format(*_wrap_scalar(tmpl, rendered, st.per_param))}")
    outs = [names(o) for o in prog.outputs]
    copies = [f"[x.clone() for x in {o}]" if c else o for o, c in zip(outs[1:], compiled.copy_output)]
    copies1 = [f"{o}.clone()" if c else o for o, c in zip(outs[1:], compiled.copy_output)]

    program_text = "\n".join("    " + line for line in str(prog).splitlines())
    math = "\n".join("    " + line for line in math_text(prog).splitlines())
    hyper_doc = _hyper_doc(spec)
    defaults = ", ".join(f"{k}={v!r}" for k, v in spec.defaults.items())
    init_sig = f"self, params, lr={lr!r}" + (f", {defaults}" if defaults else "")
    unpack = []
    for key, default in spec.defaults.items():
        if isinstance(default, tuple):
            unpack.append(f"{', '.join(spec_names[(key, k)] for k in range(len(default)))}"
                          f"{',' if len(default) == 1 else ''} = group[{key!r}]")
        else:
            unpack.append(f"{key} = group[{key!r}]")
    hyper_kwargs = ", ".join(f"{k}={k}" for k in spec.defaults)
    checks = []
    for key, default in spec.defaults.items():
        if isinstance(default, tuple):
            checks.append(f"        {key} = tuple(float(b) for b in {key})\n"
                          f"        if len({key}) != {len(default)}:\n"
                          f"            raise ValueError(f\"{key} needs {len(default)} values, got {{len({key})}}\")")
        else:
            checks.append(f"        {key} = float({key})")
    ind = "    "
    per_tensor_fn = (
        f"def _update({sig}):\n"
        f"{ind}\"\"\"The update rule for one parameter tensor; returns (update, new states).\"\"\"\n"
        + "".join(f"{ind}{line}\n" for line in per_tensor)
        + f"{ind}return {', '.join([outs[0]] + copies1)}{',' if not copies1 else ''}\n") if not has_global else ""
    multi_fn = (
        f"def _update_foreach({sig}):\n"
        f"{ind}\"\"\"The update rule for lists of tensors (one per parameter).\"\"\"\n"
        + "".join(f"{ind}{line}\n" for line in multi)
        + f"{ind}return {outs[0]}, [{', '.join(copies)}]\n")
    state_lists = ", ".join(f"state_{i}" for i in range(len(states)))
    gather_states = "".join(
        f"{ind * 4}state_{i} = [self.state[p][{s!r}] for p in params]\n" for i, s in enumerate(prog.state_names))
    call_args = ", ".join(["params", "grads"] + [f"state_{i}" for i in range(len(states))] + ["lr", "t"] + hargs)
    if has_global:
        fused_body = (f"{ind}update, new_states = _update_foreach({call_args.replace('params', WEIGHT, 1).replace('grads', GRAD, 1)})\n"
                      f"{ind}torch._foreach_sub_({WEIGHT}, update)\n"
                      f"{ind}for olds, news in zip([{state_lists}], new_states):\n"
                      f"{ind * 2}torch._foreach_copy_(olds, news)\n")
        fused_sig = ", ".join([WEIGHT, GRAD] + [f"state_{i}" for i in range(len(states))] + [LR, STEP] + hargs)
    else:
        per_args = ", ".join([f"{WEIGHT}[i]", f"{GRAD}[i]"] + [f"state_{k}[i]" for k in range(len(states))] + [LR, STEP] + hargs)
        fused_body = (f"{ind}for i in range(len({WEIGHT})):\n"
                      f"{ind * 2}update, *new_states = _update({per_args})\n"
                      f"{ind * 2}{WEIGHT}[i].sub_(update)\n"
                      + "".join(f"{ind * 2}state_{k}[i].copy_(new_states[{k}])\n" for k in range(len(states))))
        fused_sig = ", ".join([WEIGHT, GRAD] + [f"state_{i}" for i in range(len(states))] + [LR, STEP] + hargs)
    tensor_args = ", ".join(["_s(lr)", "_s(t)"] + [f"_s({h})" for h in hargs])

    return f'''"""{class_name}: an optimizer exported by evosearch.

The update rule, in evosearch's program language (the optimizer does w <- w - update; every state
variable starts at zero; lr is the param group's learning rate, t the 1-based step count):

{program_text}
Its math (guards of the division, sqrt and log omitted):

{math}

Constructor: ``{class_name}(params, lr={lr!r}{', ' + defaults if defaults else ''}, *, foreach=None, fused=False)``.
{hyper_doc}
``foreach`` (default on) updates all tensors of a group with multi-tensor kernels; ``fused=True``
compiles the step with torch.compile (slow first step, then the fastest on CPU and GPU).
"""

import torch


{_HELPERS}

{per_tensor_fn}

{multi_fn}

def _fused_step({fused_sig}):
    """A whole in-place step, written so that torch.compile can fuse it into one pass."""
{fused_body}

_compiled_step = None


class {class_name}(torch.optim.Optimizer):
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
{gather_states}                if group["fused"]:
                    if _compiled_step is None:
                        _compiled_step = torch.compile(_fused_step, dynamic=False)
                    _compiled_step(params, grads, {state_lists + ', ' if states else ''}{tensor_args})
                    continue
                if group["foreach"] is False{' and False' if has_global else ''}:
                    results = [_update({", ".join(["p", "gr"] + [f"s{k}" for k in range(len(states))] + ["lr", "t"] + hargs)})
                               for p, gr{"".join(f", s{k}" for k in range(len(states)))} in zip(params, grads{"".join(f", state_{k}" for k in range(len(states)))})]
                    update = [r[0] for r in results]
                    new_states = [[r[k + 1] for r in results] for k in range({len(states)})]
                else:
                    update, new_states = _update_foreach({call_args})
                torch._foreach_sub_(params, update)
                for name, values in zip({tuple(prog.state_names)!r}, new_states):
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
    parts.append("Every other constant is part of the rule.")
    return " ".join(parts)


def export(prog: Program, path: str | Path, class_name: str, lr: float = 1e-3) -> Path:
    path = Path(path)
    path.write_text(generate(prog, class_name, lr))
    return path
