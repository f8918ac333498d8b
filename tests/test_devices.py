"""Devices (``tasks.devices``; README, "GPUs"): the names a config may give, what they resolve to,
the baselines keyed by device kind, a search that never mixes device kinds, the actors' GPU
requests, and the GPU's batched reads of the training loop's checks, all run here on the CPU with
the same plumbing (``device = "cpu"`` given explicitly). Cases that need CUDA are skipped where
torch sees no GPU, saying so."""

from __future__ import annotations

import json

import pytest
import torch

import tasks
from evosearch import Program, reference
from evosearch.search import config as config_module
from evosearch.search.config import ConfigError, parse_config
from evosearch.search.driver import run_search
from evosearch.search.executors import RayExecutor, WorkerStartError, default_workers
from evosearch.search.suite import DEVICE, SuiteEvaluator, SuiteSpec
from tasks import devices
from tasks import training as training_module
from tests.runs import TASK, Hook, candidates, tiny_config
from tests.test_training import NONFINITE_AT_STEP_10

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="CUDA-only: torch sees no GPU on this machine")
no_cuda = pytest.mark.skipif(CUDA, reason="checks the errors of a machine without a GPU")

# ASCENT diverges; NAN_AT_STEP_13 (test_training.py's program, switched on 3 steps later, off the
# reads of every 10 steps) makes the loss non-finite at step 13, a failure read late on a GPU
ASCENT = "def train(w, g, lr):\n    u = g * -1.0\n    u = u * lr\n    return u\n"
NAN_AT_STEP_13 = NONFINITE_AT_STEP_10.replace("t - 9.5", "t - 12.5")


@pytest.fixture(scope="module", autouse=True)
def cache(evosearch_cache):
    return evosearch_cache


# ---- names and resolution ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["auto", "cpu", "cuda", "cuda:1"])
def test_the_names_a_config_may_give(name):
    assert devices.check_name(name) == name


@pytest.mark.parametrize("name", ["gpu", "CUDA", "cpu:0", "cuda:x", "", "mps"])
def test_another_name_is_an_error_that_lists_the_names(name):
    with pytest.raises(ValueError, match='"auto", "cpu", "cuda" or "cuda:N"'):
        devices.check_name(name)


def test_cpu_is_the_cpu_and_auto_is_the_cpu_for_a_worker_given_no_gpu():
    assert devices.resolve("cpu") == torch.device("cpu")
    assert devices.resolve("auto", gpus=0) == torch.device("cpu")
    assert devices.kind(devices.resolve("cpu")) == "cpu" and devices.describe("cpu") == "cpu"


@no_cuda
def test_without_a_gpu_auto_is_the_cpu_and_cuda_an_error_that_says_so():
    assert devices.resolve("auto") == torch.device("cpu")
    with pytest.raises(devices.DeviceError, match="torch sees no GPU"):
        devices.resolve("cuda")


@needs_cuda
def test_with_a_gpu_auto_is_cuda_unless_ray_gave_none():
    assert devices.resolve("auto").type == "cuda" and devices.resolve("auto", gpus=1).type == "cuda"
    with pytest.raises(devices.DeviceError, match="gpus_per_worker"):
        devices.resolve("cuda", gpus=0)
    assert "(" in devices.describe(devices.resolve("cuda"))


def test_the_driver_knows_the_kind_of_a_ray_search_before_any_worker_starts():
    assert devices.expected_kind("auto", 0, in_process=False) == "cpu"
    assert devices.expected_kind("auto", 0.5, in_process=False) == "cuda"
    assert devices.expected_kind("cuda", 1, in_process=False) == "cuda"
    assert devices.expected_kind("cpu", 1, in_process=False) == "cpu"
    assert devices.expected_kind("cpu", 0, in_process=True) == "cpu"
    with pytest.raises(devices.DeviceError, match="needs gpus_per_worker > 0"):
        devices.expected_kind("cuda:1", 0, in_process=False)


def test_the_reads_of_the_checks_are_batched_on_a_gpu_only():
    assert devices.sync_every(torch.device("cpu")) == 1
    assert devices.sync_every(torch.device("cuda")) == training_module.WEIGHT_CHECK_EVERY


# ---- tasks on a device --------------------------------------------------------------------------

def test_a_task_on_the_cpu_keeps_its_key_and_another_device_kind_gets_another():
    task = tasks.get("digits_mlp")
    key = task.key()
    assert tasks.get("digits_mlp", device="cpu").key() == key and task.to("cpu") is task
    other = tasks.get("digits_mlp").to("meta")     # a device kind without values: only the key is read
    assert other.device.type == "meta" and other.key() != key


def test_moving_a_task_makes_its_data_again_on_the_device():
    task = tasks.get("quadratic")
    first = task.data
    assert all(t.device.type == "cpu" for t in first)
    task.to("meta")
    assert all(t.device.type == "meta" for t in task.data)
    task.to("cpu")
    assert all(torch.equal(a, b) for a, b in zip(task.data, first))


def test_a_seed_gives_the_same_initial_model_as_before():
    task = tasks.get("digits_mlp")
    torch.manual_seed(3)
    made = task.make_model()
    model = task.model(3)
    assert all(torch.equal(a, b) for a, b in zip(made.parameters(), model.parameters()))
    assert {p.device.type for p in model.parameters()} == {"cpu"}


@needs_cuda
def test_a_task_trains_on_cuda_with_the_same_initial_model_and_minibatches():
    cpu, gpu = tasks.get("digits_mlp"), tasks.get("digits_mlp", device="cuda")
    a, b = cpu.model(0), gpu.model(0)
    assert all(torch.equal(x, y.cpu()) for x, y in zip(a.parameters(), b.parameters()))
    xa, _ = cpu.sampler(0).next()
    xb, _ = gpu.sampler(0).next()
    assert xb.device.type == "cuda" and torch.equal(xa, xb.cpu())
    result = gpu.evaluate(reference.load("adamw"))
    assert result.failure is None and abs(result.fitness - cpu.evaluate(reference.load("adamw")).fitness) < 0.05


# ---- the GPU's batched reads, run on the CPU ----------------------------------------------------

@pytest.fixture
def reads_every_10(monkeypatch):
    """What a GPU does (``devices.sync_every``): the loop reads its checks every 10 steps."""
    import tasks.batched as batched_module
    monkeypatch.setattr(training_module.devices, "sync_every", lambda device: 10)
    monkeypatch.setattr(batched_module, "sync_every", lambda device: 10)


@pytest.mark.parametrize("text", [None, ASCENT, NAN_AT_STEP_13])
def test_reading_every_10_steps_gives_the_same_results_and_failures(text, reads_every_10):
    task = tasks.get("digits_mlp")
    prog = Program.parse(text) if text else reference.load("adamw")
    later = task.evaluate(prog)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training_module.devices, "sync_every", lambda device: 1)
        now = task.evaluate(prog)
    assert later.fitness == now.fitness and later.failure == now.failure
    if text is None:
        assert later.metrics["val_loss"] == now.metrics["val_loss"] and later.failure is None
        assert later.metrics["loss_curve"] == now.metrics["loss_curve"]
    else:
        assert later.failure is not None


def test_batched_training_reading_every_10_steps_matches_one_at_a_time(reads_every_10):
    task = tasks.get("digits_mlp")
    programs = [reference.load("adamw"), Program.parse(ASCENT), Program.parse(NAN_AT_STEP_13), reference.load("lion")]
    together = task.evaluate_batch(programs)
    alone = [task.evaluate(p) for p in programs]
    for a, b in zip(together, alone):
        assert a.fitness == b.fitness and a.failure == b.failure


def test_a_candidate_that_raises_between_reads_leaves_the_batch_and_the_others_go_on(reads_every_10, monkeypatch):
    """A step that raises drops its row before the pending losses are read: they are read first,
    with the rows they belong to."""
    import tasks.batched as batched_module
    step = batched_module._Candidate.step

    def raising(self, w, g, layout, lr):
        if self.lr == 0.5 and self.t == 4:
            raise RuntimeError("boom at step 5")
        return step(self, w, g, layout, lr)
    monkeypatch.setattr(batched_module._Candidate, "step", raising)
    task = tasks.get("digits_mlp")
    programs = [reference.load("adamw"), reference.load("lion"), reference.load("adamw")]
    together = task.evaluate_batch(programs, lr=[1.0, 1.0, 0.5])
    assert together[2].failure == "exception during training: RuntimeError: boom at step 5"
    alone = [task.evaluate(p) for p in programs[:2]]
    assert [r.fitness for r in together[:2]] == [r.fitness for r in alone]
    assert together[0].metrics["val_loss"] == alone[0].metrics["val_loss"]


# ---- configs and searches -----------------------------------------------------------------------

def test_config_takes_device_and_gpus_per_worker():
    cfg = parse_config({"executor": {"device": "cpu", "gpus_per_worker": 0.5}})
    assert cfg.device == "cpu" and cfg.gpus_per_worker == 0.5 and cfg.suite().device == "cpu"
    assert parse_config({}).device == "auto" and parse_config({}).gpus_per_worker == 0


@pytest.mark.parametrize("table, message", [
    ({"device": "gpu"}, r"\[executor\] device must be"),
    ({"gpus_per_worker": -1}, r"\[executor\] gpus_per_worker must be a number >= 0"),
    ({"device": 1}, r"\[executor\] device must be a string"),
])
def test_a_bad_device_setting_is_an_error_that_names_it(table, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({"executor": table})


def test_a_run_saved_before_devices_resumes_on_the_cpu():
    saved = tiny_config().to_dict()
    del saved["device"], saved["gpus_per_worker"]
    assert config_module.SearchConfig.from_dict(saved).device == "cpu"


def test_workers_default_to_what_the_gpus_hold_and_more_are_refused():
    assert default_workers({"CPU": 16.0}) == 16
    assert default_workers({"CPU": 16.0, "GPU": 2.0}, 0.5) == 4
    assert default_workers({"CPU": 2.0, "GPU": 2.0}, 0.25) == 2
    with pytest.raises(ConfigError, match="no worker fits"):
        default_workers({"CPU": 16.0}, 1)
    assert default_workers({"CPU": 16.0, "GPU": 1.0}, 0.25, workers=4) == 4
    assert default_workers({"CPU": 16.0}, 0, workers=3) == 3
    with pytest.raises(ConfigError, match="workers = 4 at gpus_per_worker = 1 need 4 GPUs; the cluster has 1"):
        default_workers({"CPU": 16.0, "GPU": 1.0}, 1, workers=4)
    with pytest.raises(ConfigError, match=r"workers = 3 need 3 CPUs \(one each\); the cluster has 2"):
        default_workers({"CPU": 2.0}, 0, workers=3)


def test_cuda_on_ray_without_gpus_per_worker_is_refused_before_anything_trains(tmp_path):
    with pytest.raises(ConfigError, match="needs gpus_per_worker > 0"):
        run_search(tiny_config(device="cuda"), tmp_path / "run", progress=Hook())
    assert not (tmp_path / "run" / "run.sqlite").exists() or not candidates(tmp_path / "run")


@no_cuda
def test_cuda_in_process_on_a_machine_without_a_gpu_says_so(tmp_path):
    with pytest.raises(ConfigError, match="torch sees no GPU"):
        run_search(tiny_config(device="cuda", in_process=True), tmp_path / "run", progress=Hook())


def test_an_in_process_search_records_the_device_of_every_candidate(tmp_path):
    folder = tmp_path / "run"
    run_search(tiny_config(device="cpu", in_process=True, max_evals=4), folder, progress=Hook())
    evaluated = [r for r in candidates(folder) if r["status"] == "evaluated"]
    assert evaluated and all(json.loads(r["metrics"])[DEVICE] == {"name": "cpu", "kind": "cpu"} for r in evaluated)


def test_resuming_on_another_device_kind_is_refused(tmp_path):
    from evosearch.search.store import RunStore
    folder = tmp_path / "run"
    run_search(tiny_config(device="cpu", in_process=True, max_evals=2), folder, progress=Hook())
    store = RunStore(folder)
    store.set_meta("device_kind", "cuda")          # as if its baselines had been tuned on a GPU
    store.close()
    with pytest.raises(ConfigError, match="tuned on cuda and this session would train on cpu"):
        run_search(tiny_config(device="cpu", in_process=True, max_evals=4), folder, resume=True, progress=Hook())


def test_a_worker_of_another_device_kind_refuses_to_start():
    spec = SuiteSpec((TASK,), device="cpu", device_kind="cuda")
    with pytest.raises(devices.DeviceError, match="never mixes device kinds"):
        SuiteEvaluator(spec)


@pytest.fixture(scope="module")
def ray_with_a_gpu():
    """A local Ray that declares one GPU (a resource Ray hands out; torch sees no GPU behind it on a
    machine without one): what the actors' GPU requests are checked against."""
    import os

    import ray
    if ray.is_initialized():
        ray.shutdown()
    # as init_ray does: else Ray replaces builtins.print in this process for good, and a later Ray
    # Tune run (test_tune.py) cannot pickle its callbacks
    os.environ.setdefault("RAY_TQDM_PATCH_PRINT", "0")
    ray.init(address="local", num_cpus=2, num_gpus=1, include_dashboard=False)
    yield ray
    ray.shutdown()


def test_ray_actors_of_another_device_kind_stop_the_search_with_the_reason(ray_with_a_gpu):
    from evosearch.search.evolution import Candidate
    spec = SuiteSpec((TASK,), device="cpu", device_kind="cuda")
    executor = RayExecutor(spec, workers=1, batch_size=1)
    try:
        executor.submit([Candidate(1, reference.load("adamw"), None, "", "", "")])
        with pytest.raises(WorkerStartError, match="never mixes device kinds"):
            for _ in range(120):
                executor.poll(timeout=0.5)
    finally:
        executor.shutdown()


def test_actors_ask_ray_for_their_gpus_and_no_more_start_than_the_gpus_hold(ray_with_a_gpu, tmp_path):
    ray = ray_with_a_gpu
    with pytest.raises(ConfigError, match="gpus_per_worker = 2, but the cluster has 1 GPUs"):
        RayExecutor(SuiteSpec((TASK,)), gpus_per_worker=2)
    folder = tmp_path / "run"
    seen = []
    hook = Hook(lambda evo, executor: seen.append(ray.available_resources().get("GPU", 0.0)))
    outcome = run_search(tiny_config(device="cpu", gpus_per_worker=0.5, max_evals=8), folder, progress=hook)
    assert outcome.evaluations == 8
    assert hook.executor.workers == 2                      # two halves of the one GPU (and 2 CPUs)
    assert min(seen) == 0.0                                # both actors held their half
    evaluated = [r for r in candidates(folder) if r["status"] == "evaluated"]
    assert all(json.loads(r["metrics"])[DEVICE] == {"name": "cpu", "kind": "cpu"} for r in evaluated)


def test_gpus_the_cluster_lacks_are_an_error_before_the_baselines_wait_for_them(ray_with_a_gpu, tmp_path):
    with pytest.raises(ConfigError, match="gpus_per_worker = 2, but the cluster has 1 GPUs"):
        run_search(tiny_config(gpus_per_worker=2, max_evals=4), tmp_path / "run", progress=Hook())


@no_cuda
def test_auto_with_gpus_that_torch_cannot_see_is_refused_with_the_reason(ray_with_a_gpu, tmp_path):
    """``auto`` with ``gpus_per_worker`` means CUDA: the baselines are tuned on a worker's GPU, and
    a worker whose GPU torch cannot use says so instead of training on the CPU against them."""
    with pytest.raises(WorkerStartError, match="is cpu in this task, not cuda"):
        run_search(tiny_config(gpus_per_worker=0.5, max_evals=4), tmp_path / "run", progress=Hook())
