"""What every benchmark records about its machine, and how it writes its JSON."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import jax


def machine() -> dict:
    """The device, core count and versions a benchmark's figures were measured with."""
    device = jax.devices()[0]
    return dict(
        device=f"{device.platform}: {getattr(device, 'device_kind', '')}",
        cpu_count=os.cpu_count(),
        jax_version=jax.__version__,
        python=platform.python_version(),
    )


def on_accelerator() -> bool:
    return jax.devices()[0].platform != "cpu"


def write_result(result: dict, output: Path):
    """Write `result` as JSON to `output` atomically (a temporary file, then a rename)."""
    temporary = output.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(result, indent=2) + "\n")
    temporary.replace(output)
    print(f"  written to {output}")


def default_output(script: str, name: str) -> Path:
    """benchmarks/<name>.json on the CPU, <name>_<platform>.json on an accelerator."""
    platform_name = jax.devices()[0].platform
    suffix = "" if platform_name == "cpu" else f"_{platform_name}"
    return Path(script).with_name(f"{name}{suffix}.json")
