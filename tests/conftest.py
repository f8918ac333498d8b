"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest


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
