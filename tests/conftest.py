"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest

# The helper modules of tests/ (not test modules themselves) assert too: rewrite their asserts as
# pytest does for test modules, so that a failure shows the values compared.
pytest.register_assert_rewrite("equivalence", "programs", "runs")


@pytest.fixture(scope="session")
def evosearch_cache(tmp_path_factory):
    """One temporary baseline cache ($EVOSEARCH_CACHE) for the whole test session, so that each
    task's tuned-AdamW baseline is trained at most once and the user's own cache is never touched.
    Subprocesses and Ray workers started afterwards inherit it through the environment."""
    mp = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("evosearch-cache")
    mp.setenv("EVOSEARCH_CACHE", str(folder))
    yield folder
    mp.undo()


@pytest.fixture(scope="module")
def digits(evosearch_cache):
    """One digits_mlp instance per module (test_tasks.py, test_training.py), shared by its tests so that
    failures are followed by evaluations on it."""
    import tasks
    return tasks.get("digits_mlp")


@pytest.fixture(scope="module")
def adamw_on_digits(digits):
    """The reference result that every later evaluation of the warm start must reproduce exactly."""
    from evosearch import reference
    result = digits.evaluate(reference.load("adamw"), seed=0)
    assert result.failure is None
    return result


# ---- whole searches on the quick task (test_driver.py, test_ray_search.py, test_front.py, ...) ---

@pytest.fixture(scope="module")
def baselines(evosearch_cache):
    """Train the quick task's baseline once, so that every driver (and the CLI subprocess) reads it."""
    import tasks
    from runs import TASK
    tasks.get(TASK).baseline(0)
    return evosearch_cache


@pytest.fixture
def no_descriptions(monkeypatch):
    """The driver describes every new hall-of-fame program (sympy simplification and family matching,
    about a second each), which would dominate these tiny searches and is not what they test. One
    search (``test_small_search_on_local_ray``) keeps it."""
    import evosearch.search.describe as describe_module
    monkeypatch.setattr(describe_module, "describe_program", lambda prog: {}, raising=False)
