"""Accuracy of `jaxgal.render` against GalSim over the tests' sweep, and a larger one.

    python experiments/accuracy_sweep.py [--cases 200]

For each case (see tests/test_render_galsim.py's `sweep_case`), the largest pixel error
over the peak pixel and the relative error of the stamp's flux, in float64; writes
experiments/accuracy_sweep.json (atomically) with the worst case of each PSF kind.
"""

import argparse
import json
import sys
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)
sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from test_render_galsim import reference_and_ours, sweep_case  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=200)
    args = parser.parse_args()
    worst = {}
    for index in range(args.cases):
        case = sweep_case(index)
        reference, image = reference_and_ours(case)
        peak_error = float(np.max(np.abs(image - reference)) / reference.max())
        flux_error = float(abs(image.sum() / reference.sum() - 1.0))
        kind = case["psf"]
        entry = worst.setdefault(kind, dict(cases=0, peak_error=0.0, flux_error=0.0))
        entry["cases"] += 1
        if peak_error > entry["peak_error"]:
            entry.update(peak_error=peak_error, worst_case=case)
        entry["flux_error"] = max(entry["flux_error"], flux_error)
        print(f"{index:4d} {kind:9s} peak {peak_error:.2e} flux {flux_error:.2e}", flush=True)
    output = Path(__file__).with_suffix(".json")
    temporary = output.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(worst, indent=2) + "\n")
    temporary.replace(output)
    print(json.dumps({k: (v["peak_error"], v["flux_error"]) for k, v in worst.items()}))


if __name__ == "__main__":
    main()
