"""The galaxy-scale strong-lens population of issue 5 (the "seed's lens population").

    lens light centre   normal(0, 0.15) truncated to +-0.3 arcsec, in x and y
    lens light          mag 17 .. 21, r_eff 0.3 .. 4 arcsec, n 3 .. 8, q 0.3 .. 1, pa 0 .. 180
    mass (SIE)          centre = the lens light's; pa = the light's +- 20 deg (uniform);
                        theta_E 1 .. 2.5 arcsec, exponential of scale 1 truncated; q 0.3 .. 1
    external shear      gamma1, gamma2 uniform in -0.05 .. 0.05 each, about the lens centre
                        (not in the issue's table, which has none: a typical environment)
    source              centre = the lens centre +- 0.2 arcsec (uniform, in x and y);
                        mag 22 .. 25, r_eff 0.05 .. 0.15 arcsec, n 0.5 .. 5, q 0.3 .. 1,
                        pa 0 .. 180

Magnitudes become fluxes with the `zero_point` given. All uniform unless said otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from jaxgal.lensing.shear import ExternalShear
from jaxgal.lensing.sie import SIE
from jaxgal.lensing.system import LensSystem
from jaxgal.light.sersic import Sersic
from jaxgal.magnitudes import magnitude_to_flux


@dataclass(frozen=True)
class LensPopulation:
    """Ranges of the population (see the module docstring); angles in degrees, sizes and
    positions in arcsec."""

    centre_sigma: float = 0.15
    centre_limit: float = 0.3
    lens_magnitude: tuple[float, float] = (17.0, 21.0)
    lens_r_eff: tuple[float, float] = (0.3, 4.0)
    lens_n: tuple[float, float] = (3.0, 8.0)
    lens_q: tuple[float, float] = (0.3, 1.0)
    mass_pa_offset: float = 20.0
    theta_e: tuple[float, float] = (1.0, 2.5)
    theta_e_scale: float = 1.0
    mass_q: tuple[float, float] = (0.3, 1.0)
    shear: float = 0.05
    source_offset: float = 0.2
    source_magnitude: tuple[float, float] = (22.0, 25.0)
    source_r_eff: tuple[float, float] = (0.05, 0.15)
    source_n: tuple[float, float] = (0.5, 5.0)
    source_q: tuple[float, float] = (0.3, 1.0)

    def sample(self, key, zero_point: float, shape: tuple[int, ...] = ()) -> LensSystem:
        """Draw lenses: one `LensSystem` (SIE + ExternalShear, Sersic source and lens light)
        whose parameters have the leading `shape`."""
        keys = iter(jax.random.split(key, 20))

        def uniform(bounds):
            return jax.random.uniform(next(keys), shape, minval=bounds[0], maxval=bounds[1])

        limit = self.centre_limit / self.centre_sigma
        x0, y0 = (
            self.centre_sigma * jax.random.truncated_normal(next(keys), -limit, limit, shape)
            for _ in range(2)
        )
        light_pa = uniform((0.0, 180.0))
        lens_light = Sersic(
            magnitude_to_flux(uniform(self.lens_magnitude), zero_point),
            uniform(self.lens_r_eff),
            uniform(self.lens_n),
            uniform(self.lens_q),
            light_pa,
            x0,
            y0,
        )
        # exponential truncated to [low, high] by inverting its distribution function
        low, high = self.theta_e
        scale = self.theta_e_scale
        fraction = jax.random.uniform(next(keys), shape)
        theta_e = low - scale * jnp.log1p(-fraction * (1.0 - jnp.exp(-(high - low) / scale)))
        mass_pa = light_pa + uniform((-self.mass_pa_offset, self.mass_pa_offset))
        sie = SIE(theta_e, uniform(self.mass_q), mass_pa, x0, y0)
        shear = ExternalShear(
            uniform((-self.shear, self.shear)), uniform((-self.shear, self.shear)), x0, y0
        )
        offset = (-self.source_offset, self.source_offset)
        source = Sersic(
            magnitude_to_flux(uniform(self.source_magnitude), zero_point),
            uniform(self.source_r_eff),
            uniform(self.source_n),
            uniform(self.source_q),
            uniform((0.0, 180.0)),
            x0 + uniform(offset),
            y0 + uniform(offset),
        )
        return LensSystem((sie, shear), source, lens_light)
