"""The notebooks run from start to end (so they never rot)."""

import runpy
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.py"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_runs(notebook):
    runpy.run_path(str(notebook), run_name="__main__")


def test_there_are_notebooks():
    assert NOTEBOOKS
