"""The researcher's own tasks (``tasks/external.py``): task modules named in a config's ``[tasks]
modules`` (files or package folders, relative to the config) and installed ``evosearch.tasks`` entry
points register tasks as the built-in modules do; a search uses them in process, on an embedded Ray
and on a two-node cluster, where the module reaches the workers through Ray's ``runtime_env`` alone.
Errors name the file: a missing one, one that raises, a task name defined twice."""

from __future__ import annotations

import sys
from dataclasses import replace

import pytest

import tasks
from evosearch import cli
from evosearch.search.config import ConfigError, SearchConfig, load_config
from evosearch.search.driver import run_search
from runs import ActorNodes, Hook, check_run_store, two_node_cluster
from tasks import external

# A complete task, as the README shows one: data, model, loss, sizes (about 20 ms per evaluation).
TASK_SOURCE = '''
import torch
from torch import nn

import tasks


@tasks.register
class TinyRegression(tasks.Task):
    name = "{name}"
    description = "a tiny regression MLP (a test's own task)"
    classification = False
    sizes = {{"proxy": dict(steps=40, batch_size=16), "large": dict(steps=400, batch_size=16)}}

    def make_data(self):
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(256, 4, generator=gen)
        y = torch.tanh(x @ torch.tensor([1.0, -2.0, 0.5, 3.0]))
        return x[:192], y[:192], x[192:], y[192:]

    def make_model(self):
        return nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1), nn.Flatten(0))

    def loss(self, out, y):
        return nn.functional.mse_loss(out, y)
'''

CONFIG = """
[search]
seed = 3
time_limit = 120
population_size = 10
tournament_size = 3

[tasks]
names = ["{name}"]
modules = [{modules}]
seeds = [0]

[executor]
batch_size = 2
"""


@pytest.fixture(autouse=True)
def own_registry(monkeypatch, evosearch_cache):
    """Each test registers into a copy of the registry and loads entry points afresh; the modules it
    loaded are dropped afterwards, so other test files see the built-in tasks alone."""
    monkeypatch.setattr(tasks, "_REGISTRY", dict(tasks._REGISTRY))
    monkeypatch.setattr(external, "_entry_points_loaded", False)
    yield
    for name in [m for m in sys.modules if m == external.PACKAGE or m.startswith(external.PACKAGE + ".")]:
        del sys.modules[name]


def write_task(folder, file="my_tasks.py", name="tiny_regression", source=TASK_SOURCE):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / file).write_text(source.format(name=name))
    return folder / file


def write_config(path, name="tiny_regression", modules=("my_tasks.py",)):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(CONFIG.format(name=name, modules=", ".join(f'"{m}"' for m in modules)))
    return path


# ---- loading ------------------------------------------------------------------------------------

def test_a_config_loads_its_task_modules_relative_to_its_folder_and_keeps_them_absolute(tmp_path, monkeypatch):
    write_task(tmp_path / "project")
    config = write_config(tmp_path / "project" / "search.toml")
    monkeypatch.chdir(tmp_path)                                   # not the config's folder
    cfg = load_config(config)
    assert cfg.task_modules == (str(tmp_path / "project" / "my_tasks.py"),)
    assert "tiny_regression" in tasks.names()
    task = tasks.get("tiny_regression", size="large")
    assert type(task).__module__ == "evosearch_user_tasks.my_tasks" and task.steps == 400
    assert SearchConfig.from_dict(cfg.to_dict()) == cfg           # what a run folder keeps, for --resume
    assert load_config(config) == cfg                             # loading again changes nothing


def test_a_package_folder_with_relative_imports_is_a_task_module(tmp_path):
    package = tmp_path / "my_package"
    source = (TASK_SOURCE.replace("import tasks\n", "import tasks\nfrom .sizes import SIZES\n")
              .replace('sizes = {{"proxy"', 'sizes = SIZES\n    _unused = {{"proxy"'))
    write_task(package, "models.py", source=source)
    (package / "sizes.py").write_text('SIZES = {"proxy": dict(steps=30, batch_size=8)}\n')
    (package / "__init__.py").write_text("from . import models\n")
    load_config(write_config(tmp_path / "search.toml", modules=("my_package",)))
    assert tasks.sizes("tiny_regression") == ["proxy"] and tasks.get("tiny_regression").steps == 30


@pytest.mark.parametrize("case, expected", [
    ("missing", r"\[tasks\] modules: task module '.*/nowhere.py' does not exist"),
    ("raises", r"\[tasks\] modules: cannot import task module '.*/my_tasks.py': ZeroDivisionError: division by zero"),
    ("builtin_name", r"task 'quadratic' is defined twice: in tasks.quadratic \(.*quadratic.py\) and in "
                     r"evosearch_user_tasks.my_tasks \(.*/my_tasks.py\)"),
    ("not_a_module", r"'.*/data.txt' is neither a .py file nor a package folder"),
    ("not_a_list", r"\[tasks\] modules must be a list of strings"),
])
def test_a_task_module_that_cannot_be_loaded_is_a_config_error_naming_the_file(tmp_path, case, expected):
    modules = {"missing": ("nowhere.py",), "not_a_module": ("data.txt",)}.get(case, ("my_tasks.py",))
    source = {"raises": TASK_SOURCE + "\n1 / 0\n"}.get(case, TASK_SOURCE)
    write_task(tmp_path, source=source, name="quadratic" if case == "builtin_name" else "tiny_regression")
    (tmp_path / "data.txt").write_text("")
    config = write_config(tmp_path / "search.toml", modules=modules)
    if case == "not_a_list":
        config.write_text(config.read_text().replace('modules = ["my_tasks.py"]', 'modules = "my_tasks.py"'))
    with pytest.raises(ConfigError, match=expected):
        load_config(config)
    assert "evosearch_user_tasks.my_tasks" not in sys.modules               # a failed module leaves nothing
    assert tasks.get("quadratic").__module__ == "tasks.quadratic"


def test_a_task_name_defined_in_two_modules_is_an_error_naming_both(tmp_path, capsys):
    write_task(tmp_path, "first.py")
    write_task(tmp_path, "second.py")
    config = write_config(tmp_path / "search.toml", modules=("first.py", "second.py"))
    with pytest.raises(ConfigError, match=r"task 'tiny_regression' is defined twice: in evosearch_user_tasks.first "
                                          r"\(.*/first.py\) and in evosearch_user_tasks.second \(.*/second.py\)"):
        load_config(config)
    assert cli.main(["list-tasks", "--config", str(config)]) == 2          # one line, exit 2
    assert capsys.readouterr().err.count("\n") == 1


def test_an_entry_point_registers_its_tasks_wherever_tasks_are_listed(tmp_path, monkeypatch, capsys):
    """An installed package (here a dist-info folder on sys.path, as pip leaves one) declares its
    task module in the ``evosearch.tasks`` group; nothing names it in a config."""
    site = tmp_path / "site"
    write_task(site, "plugin_tasks.py", name="plugin_regression")
    dist = site / "evosearch_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: evosearch-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[evosearch.tasks]\nplugin = plugin_tasks\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "plugin_tasks", raising=False)
    assert cli.main(["list-tasks"]) == 0
    assert "plugin_regression" in capsys.readouterr().out
    assert tasks.get("plugin_regression").steps == 40
    sys.modules.pop("plugin_tasks", None)

    (site / "plugin_tasks.py").write_text("raise ImportError('no torch here')\n")     # a broken plugin
    monkeypatch.setattr(external, "_entry_points_loaded", False)
    with pytest.raises(tasks.TaskModuleError, match=r"task entry point plugin = 'plugin_tasks' \(group "
                                                    r"evosearch.tasks\): ImportError: no torch here"):
        tasks.names()
    sys.modules.pop("plugin_tasks", None)


def test_list_tasks_with_a_config_shows_its_own_tasks(tmp_path, capsys):
    write_task(tmp_path)
    assert cli.main(["list-tasks", "--config", str(write_config(tmp_path / "search.toml"))]) == 0
    assert "tiny_regression" in capsys.readouterr().out


# ---- searching with them --------------------------------------------------------------------------

def test_a_search_in_process_uses_the_task_and_resumes_from_the_saved_paths(no_descriptions, tmp_path, monkeypatch):
    write_task(tmp_path / "project")
    config = write_config(tmp_path / "project" / "search.toml")
    cfg = replace(load_config(config), max_evals=4, in_process=True)
    folder = tmp_path / "run"
    run_search(cfg, folder, progress=Hook())
    # a fresh process: nothing of the module loaded; --resume finds it by the path the run kept
    for name in [m for m in sys.modules if m.startswith(external.PACKAGE)]:
        del sys.modules[name]
    tasks._REGISTRY.pop("tiny_regression")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["search", "--resume", "--out", str(folder), "--in-process", "--max-evals", "6"]) == 0
    outcome = run_search(replace(cfg, max_evals=6), folder, resume=True, progress=Hook())
    rows = check_run_store(folder, outcome)
    assert sum(r["status"] == "evaluated" for r in rows) == 6
    assert all('"tiny_regression"' in r["task_fitness"] for r in rows if r["status"] == "evaluated")


def test_a_search_on_an_embedded_ray_loads_the_module_in_every_actor(no_descriptions, tmp_path):
    import ray

    from evosearch.search.executors import init_ray
    write_task(tmp_path / "project")
    cfg = replace(load_config(write_config(tmp_path / "project" / "search.toml")), max_evals=8, workers=2)
    if ray.is_initialized():
        ray.shutdown()
    init_ray(None, 2)
    try:
        outcome = run_search(cfg, tmp_path / "run", progress=Hook())
    finally:
        ray.shutdown()
    rows = check_run_store(tmp_path / "run", outcome)
    evaluated = [r for r in rows if r["status"] == "evaluated"]
    assert len(evaluated) == 8 and len({r["worker"] for r in evaluated}) == 2
    assert all('"tiny_regression"' in r["task_fitness"] for r in evaluated)


def test_on_a_two_node_cluster_the_module_reaches_the_workers_through_runtime_env_alone(no_descriptions, tmp_path):
    """Both nodes' actors train the task defined in a file of this test's folder, which they have
    only through the job's runtime_env: a worker of a job without it cannot import the module."""
    import logging

    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    def import_shipped_module() -> str:        # (defined here, Ray ships these two by value)
        """On a worker: the file the test's task module comes from, or why it cannot be imported."""
        import importlib
        try:
            return importlib.import_module("evosearch_user_tasks.my_tasks").__file__
        except ImportError as exc:
            return f"ImportError: {exc}"

    def import_by_name(folder: str) -> tuple[str, bool]:
        """On a worker: importing the module by its own name, and whether its folder is on sys.path."""
        import importlib
        import sys
        try:
            importlib.import_module("my_tasks")
            return "imported", folder in sys.path
        except ImportError as exc:
            return f"ImportError: {exc}", folder in sys.path

    write_task(tmp_path / "project")
    cfg = load_config(write_config(tmp_path / "project" / "search.toml"))
    with two_node_cluster(ray) as (cluster, worker_node):
        actors = ActorNodes(ray)
        folder = tmp_path / "run"
        outcome = run_search(replace(cfg, max_evals=8, workers=0, address=cluster.address), folder,
                             progress=actors)
        nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        assert len(nodes) == 2 and worker_node.node_id in nodes
        assert sorted(actors.nodes) == sorted(nodes)            # one actor on each node
        rows = check_run_store(folder, outcome)
        evaluated = [r for r in rows if r["status"] == "evaluated"]
        assert len(evaluated) == 8 and all('"tiny_regression"' in r["task_fitness"] for r in evaluated)
        assert {r["worker"].split(":")[0] for r in evaluated} == {n[:8] for n in nodes}

        on_worker_node = NodeAffinitySchedulingStrategy(worker_node.node_id, soft=False)
        # in the search's job, a worker on the other node has the module from the runtime_env's copy
        shipped = ray.get(ray.remote(import_shipped_module).options(scheduling_strategy=on_worker_node,
                                                                    num_cpus=0).remote())
        assert "runtime_resources" in shipped and str(tmp_path) not in shipped, shipped
        # ... and a job without that runtime_env cannot import it, by either name
        ray.shutdown()
        ray.init(address=cluster.address, logging_level=logging.WARNING)
        probe = dict(scheduling_strategy=on_worker_node, num_cpus=0)
        assert ray.get(ray.remote(import_shipped_module).options(**probe).remote()).startswith("ImportError")
        imported, on_path = ray.get(ray.remote(import_by_name).options(**probe).remote(str(tmp_path / "project")))
        assert imported.startswith("ImportError") and not on_path


def test_tune_takes_a_task_module_and_its_trials_load_it(tmp_path, monkeypatch, capsys):
    """``evosearch tune --task-module FILE``: the task is found, and a trial (on a worker, where
    nothing is loaded yet) loads the module from the job before making the task."""
    import evosearch.tune.pbt as pbt
    path = write_task(tmp_path)
    called = {}

    def fake_tune(prog, task_name, *args, modules=(), **kwargs):
        called.update(task=task_name, modules=modules)
        return "tuned"
    monkeypatch.setattr(pbt, "tune", fake_tune)
    assert cli.main(["tune", "adamw", "--task", "tiny_regression", "--task-module", str(path)]) == 0
    assert called == {"task": "tiny_regression", "modules": [str(path)]}
    assert cli.main(["tune", "adamw", "--task", "tiny_regression", "--task-module", str(tmp_path / "no.py")]) == 2
    assert "no.py' does not exist" in capsys.readouterr().err

    for name in [m for m in sys.modules if m.startswith(external.PACKAGE)]:      # as a fresh worker
        del sys.modules[name]
    tasks._REGISTRY.pop("tiny_regression")
    job = pbt.TrialJob("", "tiny_regression", "proxy", 0, (1.0, 0.5, 0.1), None, 10, (str(path),))
    assert pbt._task(job).name == "tiny_regression"
