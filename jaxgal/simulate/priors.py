"""The single-Sersic galaxy prior of GaLNet, as numpyro distributions.

One prior serves the simulator (draw a population) and the HMC sampler (its log density),
so both see the same ranges. Defaults follow the KiDS set-up of GaLNet (Li, Napolitano
et al. 2022, ApJ 929, 152) as this project's issue 3 fixes it for its test set:

    magnitude   uniform      17 .. 21.5 mag
    r_eff       log-uniform  0.2 .. 4 arcsec (circularised half-light radius)
    n           uniform      0.5 .. 6.2
    q           uniform      0.2 .. 1
    pa          uniform      0 .. 180 degrees (counter-clockwise from +x)
    x0, y0      uniform      within `centre` = 0.5 pixel of the stamp's centre

Every range can be changed; ranges outside what `jaxgal.Sersic` renders (n in [0.3, 8],
q in (0, 1], r_eff > 0) raise an error naming the parameter.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpyro.distributions as dist

from jaxgal.light.sersic import N_MAX, N_MIN, Sersic
from jaxgal.magnitudes import magnitude_to_flux

PARAMETERS = ("magnitude", "r_eff", "n", "q", "pa", "x0", "y0")


@dataclass(frozen=True)
class SersicPrior:
    """Ranges of the galaxy population; `centre` is in pixels, the rest as in `Sersic`."""

    magnitude: tuple[float, float] = (17.0, 21.5)
    r_eff: tuple[float, float] = (0.2, 4.0)
    n: tuple[float, float] = (0.5, 6.2)
    q: tuple[float, float] = (0.2, 1.0)
    pa: tuple[float, float] = (0.0, 180.0)
    centre: float = 0.5

    def __post_init__(self):
        limits = {
            "magnitude": (-float("inf"), float("inf")),
            "r_eff": (0.0, float("inf")),
            "n": (N_MIN, N_MAX),
            "q": (0.0, 1.0),
            "pa": (-float("inf"), float("inf")),
        }
        for name, (lowest, highest) in limits.items():
            low, high = (float(v) for v in getattr(self, name))
            if not low < high:
                raise ValueError(f"SersicPrior {name} range must have low < high, got {low, high}")
            bad_low = low <= lowest if name in ("r_eff", "q") else low < lowest
            if bad_low or high > highest:
                raise ValueError(
                    f"SersicPrior {name} range {low, high} leaves the renderable range "
                    f"{lowest, highest}"
                )
        if not self.centre > 0:
            raise ValueError(f"SersicPrior centre must be > 0 pixels, got {self.centre}")

    def distributions(self, pixel_scale: float) -> dict[str, dist.Distribution]:
        """One numpyro distribution a parameter (names as in `PARAMETERS`)."""
        half = self.centre * pixel_scale
        return {
            "magnitude": dist.Uniform(*self.magnitude),
            "r_eff": dist.LogUniform(*self.r_eff),
            "n": dist.Uniform(*self.n),
            "q": dist.Uniform(*self.q),
            "pa": dist.Uniform(*self.pa),
            "x0": dist.Uniform(-half, half),
            "y0": dist.Uniform(-half, half),
        }

    def sample(self, key, count: int, pixel_scale: float, zero_point: float):
        """`count` galaxies: (a batched `Sersic`, the dict of drawn parameters)."""
        keys = jax.random.split(key, len(PARAMETERS))
        distributions = self.distributions(pixel_scale)
        values = {
            name: distributions[name].sample(k, (count,))
            for name, k in zip(PARAMETERS, keys, strict=True)
        }
        flux = magnitude_to_flux(values["magnitude"], zero_point)
        galaxies = Sersic(
            flux,
            values["r_eff"],
            values["n"],
            values["q"],
            values["pa"],
            values["x0"],
            values["y0"],
        )
        return galaxies, values

    def log_prob(self, values: dict, pixel_scale: float):
        """The prior's log density of a dict of parameters (-inf outside the ranges)."""
        distributions = self.distributions(pixel_scale)
        total = 0.0
        for name in PARAMETERS:
            d = distributions[name]
            value = values[name]
            inside = d.support(value)
            # numpyro warns about values outside the support: evaluate inside, then mask
            safe = jnp.where(inside, value, 0.5 * (d.low + d.high))
            total = total + jnp.where(inside, d.log_prob(safe), -jnp.inf)
        return total
