"""The optimiser's (and the sampler's) coordinates for one Sersic: unconstrained, smooth.

    u = (magnitude, ln r_eff, logit((n - n_min) / (n_max - n_min)), w1, w2, x0, y0)

with the shape as w = -(ln q / 2) (cos 2pa, sin 2pa), so q = exp(-2 |w|) and
pa = atan2(w2, w1) / 2. The image is smooth in w through q = 1, where (q, pa) has a
wall at pa = 0/180 and a singular point (1 - q is 2 |w| to first order, and the image
depends on (1 - q) (cos 2pa, sin 2pa) ~ 2 w there); `safe_sqrt` keeps autodiff finite at
w = 0. Every coordinate is unbounded, so any u is a renderable galaxy. These are the
coordinates of `SersicModel()` with nothing fixed (`jaxgal.fitting.models`, which also
holds the bulge + disc model and fixed or bounded parameters).
"""

from __future__ import annotations

from jaxgal.fitting.models import SERSIC, sersic_values
from jaxgal.light.sersic import Sersic

COORDINATES = SERSIC.coordinates
PHYSICAL = SERSIC.names


def to_unconstrained(galaxy: Sersic, zero_point):
    """u (..., 7) of a `Sersic` (a batch: leaves with a leading axis)."""
    return SERSIC.unconstrained(sersic_values(galaxy, zero_point))


def physical(u):
    """(magnitude, r_eff, n, q, pa, x0, y0) (..., 7) of coordinates u; pa in [0, 180)."""
    return SERSIC.physical(u)


def from_unconstrained(u, zero_point) -> Sersic:
    """The `Sersic` of coordinates u (one galaxy, or a batch with leading axes)."""
    return SERSIC.profiles(physical(u), zero_point)[0]
