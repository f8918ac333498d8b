"""The layers of ``docs/design.md`` hold: the project's imports, read with ``ast`` (nothing is
imported), have no cycle and no arrow pointing up the layer order, every module sits in a layer,
and ``import evosearch`` / ``import tasks`` load only what is below them. ``python
tests/import_graph.py`` prints the figures."""

from __future__ import annotations

from pathlib import Path

import pytest

from import_graph import LAYERS, build, layer_of, report, upward

GRAPH = build()


def test_no_import_cycle():
    assert GRAPH.cycles() == [], report(GRAPH)


def test_no_import_points_up_the_layers():
    assert upward(GRAPH) == [], report(GRAPH)


def test_every_module_sits_in_a_layer():
    assert [m for m in GRAPH.modules if layer_of(m) is None] == []
    assert len(GRAPH.modules) > 50 and len(GRAPH.arrows) > 100     # the source was really read


def test_engine_modules_do_not_import_the_public_face():
    """Inside the packages, names come from the module that defines them: the face ``evosearch``
    (its ``__init__``) is for users, and importing it from below would tie the layers together."""
    assert sorted(a for a, b in GRAPH.arrows if b == "evosearch") == []


@pytest.mark.parametrize("package, never", [
    ("primitives", ("evosearch", "tasks")),
    ("evosearch", ("tasks", "evosearch.search", "evosearch.tune", "evosearch.cli")),
    ("tasks", ("evosearch.search", "evosearch.tune", "evosearch.cli", "evosearch.demo")),
])
def test_importing_a_package_loads_nothing_above_it(package, never):
    """What ``import package`` runs, with the packages Python runs first for every submodule
    (``import tasks`` runs ``evosearch/__init__.py`` through ``evosearch.optim``)."""
    loaded = GRAPH.loaded_by(package)
    assert sorted(m for m in loaded if any(m == n or m.startswith(n + ".") for n in never)) == []


def test_the_checks_can_fail(tmp_path):
    """A tree with a cycle in ``evosearch.lang`` and ``tasks`` importing ``evosearch.search`` is
    caught by every check above."""
    files = {
        "primitives/__init__.py": "",
        "evosearch/__init__.py": "from .lang import a\n",
        "evosearch/lang/__init__.py": "",
        "evosearch/lang/a.py": "from . import b\n",
        "evosearch/lang/b.py": "def f():\n    from .a import x\n",
        "evosearch/search/__init__.py": "",
        "evosearch/search/driver.py": "import tasks\n",
        "evosearch/elsewhere.py": "",
        "tasks/__init__.py": "from evosearch.search import driver\nfrom evosearch import lang\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = build(tmp_path)
    assert graph.cycles() == [["evosearch.lang.a", "evosearch.lang.b"],
                              ["evosearch.search.driver", "tasks"]]
    assert upward(graph) == [("tasks", "evosearch.search.driver")]
    assert [m for m in graph.modules if layer_of(m) is None] == ["evosearch.elsewhere"]
    assert "evosearch.search.driver" in graph.loaded_by("tasks")
    assert "evosearch.lang.a" in graph.loaded_by("tasks")          # via evosearch/__init__.py


def test_layer_order_is_the_documented_one():
    design = (Path(__file__).parents[1] / "docs" / "design.md").read_text()
    table = [line.split("|")[1].strip().strip("`").rstrip("/") for line in design.splitlines()
             if line.startswith("| `")]
    assert table[:7] == [names[0].replace(".", "/") for names in LAYERS[:7]]
