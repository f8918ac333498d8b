# Helpers for exported optimizers: this file's text is copied verbatim into every module that
# `evosearch export` writes, so that the module imports nothing but torch. They implement the same
# guards as the primitives package (tests check that exported and in-memory optimizers agree).
import torch

_DIV_EPS = 1e-8
_CLAMP = 1e30


def _s(x):
    """A Python number as a 0-d tensor, so that torch functions accept it."""
    return x if isinstance(x, torch.Tensor) else torch.tensor(float(x), dtype=torch.float64)


def _num(x):
    """A statement on scalars only, as a Python number: what the in-memory optimizer computes in
    eager steps (so that `_interp` and later statements round the same way). Under torch.compile
    (``fused=True``) it stays a 0-d tensor, which the compiled step keeps in its graph."""
    if isinstance(x, torch.Tensor) and not torch.compiler.is_compiling():
        return x.item()
    return x


def _finite(x):
    if not isinstance(x, torch.Tensor):   # a scalar statement (`cube(lr)`) stays a number
        return float(torch.nan_to_num(torch.tensor(float(x), dtype=torch.float64), nan=0.0, posinf=_CLAMP,
                                      neginf=-_CLAMP))
    return torch.nan_to_num(x, nan=0.0, posinf=_CLAMP, neginf=-_CLAMP)


def _div(x, y):
    y = _s(y)
    return _finite(x / (y + torch.copysign(torch.full_like(y, _DIV_EPS), y)))


def _max(x, y):
    return torch.maximum(_s(x), _s(y))


def _min(x, y):
    return torch.minimum(_s(x), _s(y))


def _reuse(x):
    """``x``, for the statement that reads it last to write its result into (``out=``), or None: a
    new tensor. The exporter passes only a tensor that nothing reads afterwards (a temporary, or a
    state whose old value is dead) and has the parameter's shape; writing there gives the same
    numbers where the result also has its dtype, as every tensor-valued statement has on a parameter
    with dimensions. On a 0-d parameter a statement may promote to float64 (through `_s`'s 0-d
    float64 scalars), and under torch.compile the compiled step manages its own buffers: None."""
    return x if x.dim() > 0 and not torch.compiler.is_compiling() else None


def _interp(x, y, a, out=None):
    # (1 - a) is formed in double precision, as torch's optimizers do (torch.lerp rounds a first).
    # The sum is formed in place only where it has x's shape (x may be a reduction's 0-d result).
    # ``out`` (x, y or None, see `_reuse`): the tensor to hold the result, with the same kernels.
    if isinstance(x, torch.Tensor) and isinstance(a, float):
        if out is not None and out is y:        # x * (1 - a) needs y unchanged until the sum
            return torch.add(torch.mul(x, 1.0 - a), y, alpha=a, out=out)
        out = torch.mul(x, 1.0 - a, out=out)
        if isinstance(y, torch.Tensor) and y.shape != out.shape:
            return torch.add(out, y, alpha=a)
        return out.add_(y, alpha=a)
    return (1 - a) * x + a * y


def _foreach_interp(xs, ys, a):
    # ys and a: one value per tensor (a list, or the tuple a torch._foreach_* call returns) or one
    # value for all
    if not (isinstance(a, float) and isinstance(ys, (list, tuple))):
        ys = ys if isinstance(ys, (list, tuple)) else [ys] * len(xs)
        a = a if isinstance(a, (list, tuple)) else [a] * len(xs)
        return [_interp(x, y, w) for x, y, w in zip(xs, ys, a)]
    out = torch._foreach_mul(xs, 1.0 - a)
    torch._foreach_add_(out, ys, alpha=a)
    return out


def _power(x, c):
    return _finite(torch.pow(torch.abs(_s(x)), c))


def _clip(x, c):
    c = torch.abs(_s(c))
    return torch.minimum(torch.maximum(_s(x), -c), c)


def _norm(xs):
    return list(torch._foreach_norm(xs))


def _dot(xs, ys):
    return [torch.sum(x * y) for x, y in zip(xs, ys)]


def _cosine_sim(xs, ys):
    return [_div(d, nx * ny) for d, nx, ny in zip(_dot(xs, ys), _norm(xs), _norm(ys))]


def _global_norm(xs):
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(xs)))
    return [total for _ in xs]


def _clip_by_global_norm(xs, cs):
    total = _global_norm(xs)[0]
    return [x * torch.clamp(torch.abs(_s(c)) / (total + _DIV_EPS), max=1.0) for x, c in zip(xs, cs)]


def _use_foreach(foreach, params):
    """Whether a step takes the multi-tensor path: as the constructor asked, or by default (None) the
    faster exact path for the parameters' device, as torch.optim chooses: the one-tensor loop when
    any parameter is on the CPU, whose ``_foreach_*`` kernels loop over the tensors anyway and run
    each statement over the whole group before the next (measured slower, see the module docstring),
    and ``_foreach_*`` kernels elsewhere (CUDA: one launch for many tensors)."""
    if foreach is not None:
        return foreach
    return not any(p.device.type == "cpu" for p in params)


# The one-tensor loop on CPU runs the rule over tiles of this many elements, every statement on a
# tile before the next tile, where the program allows it (the module's `_TILED`): a tile's
# temporaries then stay in the CPU's cache instead of going out to memory and back at every
# statement. 131072 float32 elements are 512 KB a tensor; experiments/results/benchmarks.md
# ("Tiles") has the figures.
_TILE = 131072


def _tiles(p, gr, states):
    """``p``, its gradient and its states cut into matching flat tiles of ``_TILE`` elements (a list
    of (w, g, states) views), or None where the tensor is not worth cutting (a CPU tensor of at most
    ``_TILE`` elements, or any tensor on another device) or cannot be cut into matching views (a
    tensor that is not contiguous, or a state that is not a tensor of the parameter's size)."""
    n = p.numel()
    if n <= _TILE or p.device.type != "cpu":
        return None
    tensors = (p, gr, *states)
    if not all(isinstance(x, torch.Tensor) and x.numel() == n and x.is_contiguous() for x in tensors):
        return None
    w, g, *flat_states = (x.view(-1) for x in tensors)
    return [(w[i:i + _TILE], g[i:i + _TILE], [s[i:i + _TILE] for s in flat_states]) for i in range(0, n, _TILE)]


def _put(states, values):
    """Write a tile's new state values into its state tiles. A value that is another state's tile (a
    statement wrote it there, or the rule returns one state as another) is copied first, so that no
    state is overwritten before it is read."""
    values = [v.clone() if v is not s and any(v is o for o in states) else v for s, v in zip(states, values)]
    for s, v in zip(states, values):
        if v is not s:
            s.copy_(v)
