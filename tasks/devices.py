"""Where tasks train: the device names a config gives (``[executor] device``), what each resolves to
in a process, and what a run records of it.

* ``"cpu"``: the CPU, whatever the machine has.
* ``"cuda"`` (or ``"cuda:N"``): a GPU; a process that has none is an error that says how to give it one.
* ``"auto"``: CUDA when the process has a GPU, else the CPU. A Ray worker has a GPU when Ray gave it
  one (``gpus_per_worker`` > 0: ``ray.get_gpu_ids()``); Ray leaves every GPU of a node visible to an
  actor that asked for none, and such an actor trains on the CPU. A process outside Ray (the driver
  with ``--in-process``, ``tune --in-process``, a script) has one when torch sees one.

CPU and CUDA kernels give different losses (other summation orders, other libraries), so a search
trains on one device kind only, and tuned baselines are keyed by it (``Task.key``). Every device
kind trains in float32.
"""

from __future__ import annotations

import os

import torch

NAMES = ("auto", "cpu", "cuda")


class DeviceError(RuntimeError):
    """A device that this process cannot train on; the message says why and what to change."""


def check_name(name: str) -> str:
    """``name`` if a config may give it ("auto", "cpu", "cuda", "cuda:N"), else ValueError."""
    base, _, index = str(name).partition(":")
    if base not in NAMES or (index and (base != "cuda" or not index.isdigit())):
        raise ValueError(f'device must be "auto", "cpu", "cuda" or "cuda:N", not {name!r}')
    return name


def resolve(name: str, gpus: int | None = None) -> torch.device:
    """The torch device that ``name`` means in this process. ``gpus``: how many GPUs Ray gave this
    worker (None: not a Ray worker, so whether torch sees one)."""
    check_name(name)
    has_gpu = torch.cuda.is_available() and (gpus is None or gpus > 0)
    if name == "cpu" or (name == "auto" and not has_gpu):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise DeviceError(f"device {name!r}: torch sees no GPU here (torch {torch.__version__}, "
                          f"built {'with' if torch.backends.cuda.is_built() else 'without'} CUDA)")
    if gpus == 0:
        raise DeviceError(f"device {name!r}: this Ray worker was given no GPU; set [executor] gpus_per_worker "
                          f"(a fraction shares one GPU between workers)")
    device = torch.device(name if name != "auto" else "cuda")
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise DeviceError(f"device {name!r}: this process sees {torch.cuda.device_count()} GPU(s)")
    return device


def kind(device: torch.device | str) -> str:
    """The device kind a baseline and a run are keyed by: "cpu" or "cuda"."""
    return torch.device(device).type


def describe(device: torch.device | str) -> str:
    """What the run store records of a device: "cpu", or "cuda:0 (NVIDIA H200)"."""
    device = torch.device(device)
    if device.type != "cuda":
        return device.type
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"


def expected_kind(name: str, gpus_per_worker: float, in_process: bool) -> str:
    """The device kind a search's candidates train on, as the driver can tell before any worker
    starts (its baselines are tuned there): in-process, what ``name`` resolves to in the driver;
    on Ray, "cuda" when the workers are given GPUs or ``name`` asks for CUDA, else "cpu".
    DeviceError where they could not train there: CUDA on Ray workers given no GPU."""
    check_name(name)
    if in_process:
        return kind(resolve(name))
    if name.startswith("cuda") and not gpus_per_worker:
        raise DeviceError(f'device "{name}" needs gpus_per_worker > 0 (tune: --gpus-per-trial): Ray gives a '
                          f"worker a GPU only when it asks for one; 0.5 puts two workers on each GPU")
    return "cuda" if name.startswith("cuda") or (name == "auto" and gpus_per_worker > 0) else "cpu"


GPU_READ_EVERY = 10   # the weight check's cadence (training.WEIGHT_CHECK_EVERY): both read at once


def sync_every(device: torch.device) -> int:
    """Steps between the training loop's reads of its failure checks (loss and weights) back to the
    host: every step on the CPU, where reading is free; on a GPU every ``GPU_READ_EVERY`` steps, so
    that the host does not wait for the device at each step."""
    return 1 if device.type == "cpu" else GPU_READ_EVERY


def prepare(device: torch.device, deterministic: bool = False) -> None:
    """Set this process up to train on ``device``: on a GPU, float32 products and convolutions as
    on the CPU (no TF32, which cuDNN's convolutions use by default), and with ``deterministic``
    torch's deterministic algorithms (``make_deterministic``). Nothing on the CPU."""
    if device.type != "cuda":
        return
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    if deterministic:
        make_deterministic()


def make_deterministic() -> None:
    """torch's deterministic algorithms in this process (``torch.use_deterministic_algorithms``),
    with the cuBLAS workspace setting they need on CUDA (read when cuBLAS starts: call this before
    the first CUDA product). An operation without a deterministic version then raises, and the
    candidate that used it fails with that reason."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
