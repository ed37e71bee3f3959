"""Run in a fresh process with JAX_ENABLE_X64=0: float32 images against GalSim.

Toggling x64 inside one process confuses JAX's caches, so the float32 tests run this
module in a subprocess; it prints one JSON line of the largest errors over the peak.
"""

import json
import sys

import numpy as np

sys.path.insert(0, __file__.rsplit("/", 1)[0])


def main(indices):
    import jax

    assert not jax.config.jax_enable_x64
    from test_render_galsim import reference_and_ours, sweep_case

    errors = {}
    for index in indices:
        reference, image = reference_and_ours(sweep_case(index), dtype=np.float32)
        assert image.dtype == np.float32, image.dtype
        errors[index] = float(np.max(np.abs(image - reference)) / reference.max())
    print(json.dumps(errors))


if __name__ == "__main__":
    main([int(value) for value in sys.argv[1:]])
