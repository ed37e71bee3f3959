"""The notebooks run from start to end (so they never rot)."""

import runpy
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.py"))
# the fitting notebook compiles what tests/test_fit.py and test_hmc.py's fit test compile:
# in one test worker (pytest's --dist loadgroup) they compile it once
SHARED = {"fitting_tour.py": "kids_fit"}


@pytest.mark.parametrize(
    "notebook",
    [
        pytest.param(path, marks=[pytest.mark.xdist_group(SHARED[path.name])])
        if path.name in SHARED
        else path
        for path in NOTEBOOKS
    ],
    ids=lambda path: path.name,
)
def test_notebook_runs(notebook):
    runpy.run_path(str(notebook), run_name="__main__")


def test_there_are_notebooks():
    assert NOTEBOOKS
