"""``ProgramOptimizer``: a ``torch.optim.Optimizer`` that runs a compiled program on each param group.

The group's ``lr`` feeds the program's ``lr`` input (so LR schedulers work); ``t`` is the 1-based
step count of each parameter; state variables are zero-initialised lazily, per parameter, the first
time that parameter has a gradient; parameters without gradients are skipped. ``to_optimizer``
(``factory.py``) makes the subclass for one program.
"""

from __future__ import annotations

import warnings

import torch

from evosearch.lang.program import Program

from . import hyperparams
from .compiled import CompiledProgram

LR_IGNORED = ("WARNING: this update rule is not proportional to its lr input (evosearch's learning-rate "
              "rule was off when it was found): the lr you pass, and any LR scheduler, do not set its "
              "step size as they would for AdamW or Lion.")


class ProgramOptimizer(torch.optim.Optimizer):
    """Base class of the optimizers made by ``to_optimizer``; ``program`` is the update rule."""

    program: Program
    _compiled: CompiledProgram
    _follows_lr: bool = True

    def __init__(self, params, lr: float = 1e-3, *, foreach: bool | None = None, **hyper):
        spec_defaults = hyperparams.constructor_defaults(type(self)._spec)
        self._decoupled = hyperparams.decoupled_decay(type(self)._spec)
        unknown = set(hyper) - set(spec_defaults)
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected arguments {sorted(unknown)}; "
                            f"its hyperparameters are lr, {', '.join(spec_defaults) or '(none)'}")
        if not lr >= 0.0:
            raise ValueError(f"invalid learning rate: {lr}")
        defaults = dict(lr=lr, foreach=foreach)
        for key, default in spec_defaults.items():
            value = hyper.get(key, default)
            if isinstance(default, tuple):
                value = tuple(float(v) for v in value)
                if len(value) != len(default):
                    raise ValueError(f"{key} needs {len(default)} values, got {len(value)}")
            else:
                value = float(value)
            defaults[key] = value
        if not self._follows_lr:
            warnings.warn(f"{type(self).__name__}: {LR_IGNORED}", UserWarning, stacklevel=3)
        super().__init__(params, defaults)

    @staticmethod
    def _decay(params: list[torch.Tensor], group: dict) -> None:
        """Decoupled weight decay, ``w <- w * (1 - lr * weight_decay)``, before the step."""
        if group["weight_decay"]:
            torch._foreach_mul_(params, 1.0 - group["lr"] * group["weight_decay"])

    @torch.no_grad()
    def step(self, closure=None):
        """One step of the program for every parameter with a gradient (grouped by step count)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        states_names = self.program.state_names
        for group in self.param_groups:
            by_step: dict[int, list[torch.Tensor]] = {}
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    for name in states_names:
                        state[name] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] = int(state["step"]) + 1
                by_step.setdefault(state["step"], []).append(p)
            foreach = group["foreach"] if group["foreach"] is not None else True
            for t, params in by_step.items():
                grads = [p.grad for p in params]
                if self._decoupled:
                    self._decay(params, group)
                states = [[self.state[p][name] for p in params] for name in states_names]
                updates, new_states = self._compiled(params, grads, states, float(group["lr"]),
                                                     float(t), group, foreach)
                if foreach:
                    torch._foreach_sub_(params, updates)
                else:
                    for p, u in zip(params, updates):
                        p.sub_(u)
                for name, values in zip(states_names, new_states):
                    for p, v in zip(params, values):
                        self.state[p][name] = v
        return loss
