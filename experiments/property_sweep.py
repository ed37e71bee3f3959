"""No NaN or inf in value or gradient over many random draws, with and without a PSF.

    JAX_ENABLE_X64=0 python experiments/property_sweep.py [--draws 100000]

The same draws and checks as tests/float32_properties.py (float32), at full size for both
paths: the suite runs fewer, to stay within its time budget. Prints one line per path;
exits non-zero if any draw is not finite.
"""

import argparse
import sys
import time
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))

from float32_properties import CHECKERS, CHUNK, SIDES, draw_parameters  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--draws", type=int, default=100_000)
    args = parser.parse_args()
    failures = 0
    for with_psf in (False, True):
        start, checked, bad = time.perf_counter(), 0, 0
        seed = 0
        while checked < args.draws:
            side = SIDES[seed % len(SIDES)]
            pixel_scale = (0.05, 0.074, 0.1, 0.2)[seed % 4]
            batch = draw_parameters(jax.random.key(10_000 + seed), CHUNK, pixel_scale, side)
            bad += not bool(CHECKERS[(with_psf, side)](batch, jax.numpy.float32(pixel_scale)))
            checked += CHUNK
            seed += 1
        failures += bad
        name = "with a Moffat PSF" if with_psf else "without a PSF"
        print(
            f"{name}: {checked} draws, {bad} batches with a NaN or inf, "
            f"{time.perf_counter() - start:.0f} s"
        )
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
