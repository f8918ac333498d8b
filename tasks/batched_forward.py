"""The forward pass of K models at once, whose backward gives each model bit for bit the gradient
it gets alone (``tasks.batched`` trains K candidates with it).

Candidates with ``sign`` or large learning rates train chaotically: with plain vmap, whose batched
matmuls sum in another order for thin layers, a last-bit difference in one gradient grew to a 1e-2
difference in fitness within 100 steps. So products are batched with the operand order of the
one-model kernels (``_ExactProducts``): ``F.linear`` as ``baddbmm`` with the backward of ``addmm``
(``_BatchedLinear``), dot products model by model, a shared matrix times one vector per model in
the orientation that sums like ``mv``. Whether that makes a task's batched step exact is checked by
``tasks.batched`` once per task and batch size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap
from torch.overrides import TorchFunctionMode


def batched_loss(task, model: torch.nn.Module, layout):
    """(leaves, x, y) -> the K models' losses (``layout.names`` names the leaves), with the
    products of ``_ExactProducts``. A
    ``nn.Sequential`` of linear layers, flattenings and elementwise activations runs layer by layer
    on (K, ...) tensors (``sequential``), only the loss under vmap: the same kernels as vmap over
    the whole model, at less than half its overhead; any other model runs under vmap."""
    layers = sequential(model)
    if layers is not None:
        k_loss = vmap(task.loss, in_dims=(0, None))

        def run(leaves, xb, yb):
            with _ExactProducts():
                return k_loss(layers(dict(zip(layout.names, leaves)), xb), yb)
        return run

    def loss(tensors, xb, yb):
        return task.loss(functional_call(model, dict(zip(layout.names, tensors)), (xb,)), yb)

    batched = vmap(loss, in_dims=(0, None, None))

    def run(leaves, xb, yb):
        with _ExactProducts():
            return batched(leaves, xb, yb)
    return run


# Modules that act on each element alone: the same on a (K, ...) stack as on each model's slice.
_ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.GELU, nn.Sigmoid, nn.SiLU, nn.LeakyReLU, nn.ELU, nn.Softplus,
                nn.Identity)


def sequential(model: torch.nn.Module):
    """For a ``nn.Sequential`` of ``nn.Linear``, ``nn.Flatten`` and ``_ELEMENTWISE`` modules: a
    function (parameters by name, shared input x) -> the K models' outputs (K, ...); else None."""
    named = list(model._modules.items())     # a module used twice is listed twice
    if type(model) is not nn.Sequential or not all(
            type(m) in (nn.Linear, nn.Flatten) + _ELEMENTWISE for _, m in named):
        return None
    if len({id(m) for _, m in named}) < len(named) or any(   # shared parameters, hooks: vmap's job
            m._forward_hooks or m._forward_pre_hooks for m in [model] + [m for _, m in named]):
        return None

    def forward(params: dict, x: torch.Tensor) -> torch.Tensor:
        k = next(iter(params.values())).shape[0]
        h, stacked = x, False
        for name, m in named:
            if type(m) is nn.Linear:
                h = _stacked_linear(h if stacked else h.expand(k, *h.shape),
                                    params[f"{name}.weight"], params.get(f"{name}.bias"))
                stacked = True
            elif type(m) is nn.Flatten:   # its dimensions count from a model's, not the stack's
                start = m.start_dim + stacked if m.start_dim >= 0 else m.start_dim
                end = m.end_dim + stacked if m.end_dim >= 0 else m.end_dim
                h = h.flatten(start, end)
            else:
                h = m(h)
        return h if stacked else h.expand(k, *h.shape)
    return forward


class _ExactProducts(TorchFunctionMode):
    """Under vmap: ``F.linear`` by ``_BatchedLinear``, products with a vector operand by
    ``_PerModel``, so that each model gets bit for bit its one-model result."""

    PER_MODEL = {torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.Tensor.__rmatmul__,
                 torch.mv, torch.Tensor.mv, torch.dot, torch.Tensor.dot}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.linear and not kwargs and args[0].dim() >= 2:
            return _Linear.apply(*args)
        if func in self.PER_MODEL and not kwargs and any(a.dim() == 1 for a in args):
            if func is torch.Tensor.__rmatmul__:
                func, args = torch.matmul, args[::-1]
            return _PerModel.apply(func, *args)
        return func(*args, **kwargs)


def _to_front(t, dim, size):
    return t.movedim(dim, 0) if dim is not None else t.expand(size, *t.shape)


class _Linear(torch.autograd.Function):
    """``F.linear`` whose vmap rule is ``_BatchedLinear`` (only ever run under vmap)."""

    @staticmethod
    def forward(x, weight, bias=None):
        return F.linear(x, weight, bias)

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError("_Linear is differentiated through its batched form only")

    @staticmethod
    def vmap(info, in_dims, x, weight, bias=None):
        k = info.batch_size
        x, weight = _to_front(x, in_dims[0], k), _to_front(weight, in_dims[1], k)
        bias = _to_front(bias, in_dims[2], k) if bias is not None else None
        return _stacked_linear(x, weight, bias), 0


def _stacked_linear(x, weight, bias):
    """K linear layers on x (K, ..., in): ``_BatchedLinear`` over its rows, shaped back."""
    out = _BatchedLinear.apply(x.reshape(x.shape[0], -1, x.shape[-1]), weight, bias)
    return out.view(*x.shape[:-1], weight.shape[1])


class _BatchedLinear(torch.autograd.Function):
    """K linear layers: x (K, M, in), weight (K, out, in), bias (K, out) -> (K, M, out), with the
    operand order of the one-model kernels: ``F.linear`` runs ``addmm(b, x, W.t())`` and its
    backward ``grad @ W``, ``x.t() @ grad`` and ``grad.sum(0)``. With one output, ``addmm`` and the
    weight's gradient run as matrix-vector products, whose summation order ``bmm`` matches on some
    CPUs and not on others (MKL picks the kernel by the instruction set): those two run model by
    model, with the one-model kernels themselves."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        if weight.shape[1] == 1:
            if bias is None:
                return torch.stack([torch.mm(xk, wk.t()) for xk, wk in zip(x, weight)])
            return torch.stack([torch.addmm(bk, xk, wk.t()) for xk, wk, bk in zip(x, weight, bias)])
        if bias is None:
            return torch.bmm(x, weight.transpose(1, 2))
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        if not need_w:
            grad_w = None
        elif weight.shape[1] == 1:
            grad_w = torch.stack([xk.t().mm(gk).t() for xk, gk in zip(x, grad)])
        else:
            grad_w = torch.bmm(grad.transpose(1, 2), x)
        return (torch.bmm(grad, weight) if need_x else None, grad_w,
                grad.sum(1) if need_b else None)


class _PerModel(torch.autograd.Function):
    """A product with a vector operand (``func`` is matmul, mv or dot), batched exactly: dot
    products by ``_BatchedDot``, a shared matrix times a vector per model by ``_BatchedMV``, any
    other model by model (``_Loop``)."""

    @staticmethod
    def forward(func, *args):
        return func(*args)

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, grad):
        raise RuntimeError("_PerModel is differentiated through its batched form only")

    @staticmethod
    def vmap(info, in_dims, func, *args):
        size, dims = info.batch_size, in_dims[1:]
        ranks = [a.dim() - (d is not None) for a, d in zip(args, dims)]
        if ranks == [1, 1]:
            return _BatchedDot.apply(*[_to_front(a, d, size) for a, d in zip(args, dims)]), 0
        if ranks == [2, 1] and dims[0] is None and dims[1] is not None:
            return _BatchedMV.apply(args[0], args[1].movedim(dims[1], 0)), 0
        return _Loop.apply(func, size, dims, *args), 0


class _BatchedDot(torch.autograd.Function):
    """K dot products (K, n) . (K, n) -> (K,): the one-model ``dot`` row by row; its backward is
    elementwise (grad * other), exact batched."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return torch.stack([torch.dot(x, y) for x, y in zip(a, b)])

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        grad = grad.unsqueeze(1)
        return grad * b if need_a else None, grad * a if need_b else None


class _BatchedMV(torch.autograd.Function):
    """A matrix A shared by K models times one vector each: (m, n), (K, n) -> (K, m). The one-model
    ``mv`` sums like ``bmm`` with the vector as a row on the left of ``A.t()`` (on MKL; ``_batchable``
    checks it per task); its backward ``A.t().mv(grad)`` runs model by model, since no ``bmm``
    matches its summation order on every CPU."""

    @staticmethod
    def forward(ctx, matrix, vectors):
        ctx.save_for_backward(matrix)
        k = vectors.shape[0]
        return torch.bmm(vectors.unsqueeze(1), matrix.t().expand(k, *matrix.t().shape)).squeeze(1)

    @staticmethod
    def backward(ctx, grad):
        (matrix,) = ctx.saved_tensors
        if ctx.needs_input_grad[0]:
            raise RuntimeError("a matrix shared by all models needs a gradient")
        return None, torch.stack([matrix.t().mv(g) for g in grad])


class _Loop(torch.autograd.Function):
    """``func`` for K models one at a time, forward and backward: the one-model kernels exactly."""

    @staticmethod
    def forward(ctx, func, size, dims, *args):
        ctx.graphs = []
        outs = []
        for k in range(size):
            inputs = [a.select(d, k).clone().requires_grad_(need) if d is not None else a
                      for a, d, need in zip(args, dims, ctx.needs_input_grad[3:])]
            with torch.enable_grad():
                out = func(*inputs)
            ctx.graphs.append((inputs, out))
            outs.append(out.detach())
        ctx.dims = dims
        return torch.stack(outs)

    @staticmethod
    def backward(ctx, grad):
        needs = ctx.needs_input_grad[3:]
        if any(need and d is None for need, d in zip(needs, ctx.dims)):
            raise RuntimeError("a tensor shared by all models needs a gradient")
        grads = [[] for _ in needs]
        for k, (inputs, out) in enumerate(ctx.graphs):
            wanted = [i for i, need in enumerate(needs) if need]
            for i, g in zip(wanted, torch.autograd.grad(out, [inputs[i] for i in wanted], grad[k])):
                grads[i].append(g)
        return (None, None, None, *[torch.stack(g, d) if g else None for g, d in zip(grads, ctx.dims)])
