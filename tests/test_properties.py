"""No NaN or inf in value or gradient over random draws: tests/float32_properties.py,
run with hypothesis in a fresh float32 process (see its docstring for the draws)."""

import os
import subprocess
import sys
from pathlib import Path


def test_float32_properties_hold():
    module = Path(__file__).with_name("float32_properties.py")
    environment = {**os.environ, "JAX_ENABLE_X64": "0"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "--noconftest",
            "-p",
            "no:cacheprovider",
            str(module),
        ],
        capture_output=True,
        text=True,
        env=environment,
        cwd=module.parent,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "2 passed" in result.stdout, result.stdout[-3000:]
