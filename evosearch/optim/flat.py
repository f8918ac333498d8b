"""Flat-buffer optimizers: every parameter of a param group (and its gradient and each state
variable) lives in one contiguous buffer, so that each statement of a program is one torch call for
the whole model. This is the fast path for evaluating candidates on small proxy models, where the
per-call overhead of torch dominates (the AdamW program trains about as fast as
``torch.optim.AdamW(foreach=True)``: ``experiments/results/benchmarks.md``).

Differences from ``ProgramOptimizer``: parameters are re-homed into the buffer at construction
(``p.data`` becomes a view) and their gradients are views of a zeroed gradient buffer, so a parameter
that received no gradient is updated as if its gradient were zero; ``zero_grad`` zeroes in place.
Programs with per-tensor reductions (``norm``, ``dot``, ``cosine_sim``) run on per-parameter views,
which keeps their meaning.
"""

from __future__ import annotations

import torch

from .optimizer import ProgramOptimizer


class _Flat:
    def __init__(self, params: list[torch.Tensor], state_names: tuple[str, ...]):
        p0 = params[0]
        if any(p.dtype != p0.dtype or p.device != p0.device for p in params):
            raise ValueError("flat mode needs every parameter of a group on one device and dtype")
        total = sum(p.numel() for p in params)
        self.params = params
        self._index: dict[int, tuple[int, int]] = {}
        self.w = torch.empty(total, dtype=p0.dtype, device=p0.device)
        self.g = torch.zeros_like(self.w)
        self.states = [torch.zeros_like(self.w) for _ in state_names]
        self.offsets = []
        offset = 0
        for p in params:
            n = p.numel()
            self.w[offset:offset + n].copy_(p.detach().reshape(-1))
            self.offsets.append((offset, n))
            self._index[id(p)] = (offset, n)
            offset += n
        for p in params:
            p.data = self.view(self.w, p)
            p.grad = self.view(self.g, p)
        self.t = 0

    def view(self, buf: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        offset, n = self._index[id(p)]
        return buf[offset:offset + n].view_as(p)

    def views(self, buf: torch.Tensor) -> list[torch.Tensor]:
        return [buf[o:o + n].view_as(p) for (o, n), p in zip(self.offsets, self.params)]


class FlatProgramOptimizer(ProgramOptimizer):
    """A ``ProgramOptimizer`` over flat buffers; see the module docstring."""

    def __init__(self, params, lr: float = 1e-3, *, foreach: bool | None = None, **hyper):
        super().__init__(params, lr, foreach=foreach, **hyper)
        names = self.program.state_names
        self._flat = []
        for group in self.param_groups:
            flat = _Flat(list(group["params"]), names)
            self._flat.append(flat)
            for p in flat.params:
                self.state[p].update({"step": 0, **{n: flat.view(s, p) for n, s in zip(names, flat.states)}})
        self._per_tensor = any(st.prim.reduces == "tensor" for st in self._compiled.steps)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero the gradient buffers in place (the parameters' ``.grad`` are views of them)."""
        for flat in self._flat:
            flat.g.zero_()

    @torch.no_grad()
    def step(self, closure=None):
        """One step of the program on each group's flat buffers."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group, flat in zip(self.param_groups, self._flat):
            flat.t += 1
            if self._per_tensor:
                w, g = flat.views(flat.w), flat.views(flat.g)
                states = [flat.views(s) for s in flat.states]
            else:
                w, g, states = [flat.w], [flat.g], [[s] for s in flat.states]
            if self._decoupled:
                self._decay([flat.w], group)
            updates, new_states = self._compiled(w, g, states, float(group["lr"]), float(flat.t), group, True)
            torch._foreach_sub_(w, updates)
            for old, new in zip(states, new_states):
                torch._foreach_copy_(old, new)
            for p in flat.params:
                self.state[p]["step"] = flat.t
        return loss

    def load_state_dict(self, state_dict) -> None:
        """Load as ``torch.optim.Optimizer`` does, then copy the states back into the flat buffers."""
        super().load_state_dict(state_dict)
        names = self.program.state_names
        for flat in self._flat:
            steps = {int(self.state[p]["step"]) for p in flat.params}
            flat.t = max(steps) if steps else 0
            for p in flat.params:      # copy the loaded values into the buffers, then re-point
                for name, buf in zip(names, flat.states):
                    flat.view(buf, p).copy_(self.state[p][name])
                    self.state[p][name] = flat.view(buf, p)
