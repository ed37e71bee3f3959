"""External shear, per `CONVENTIONS.md` (lenstronomy's `SHEAR` with `ra_0 = x0, dec_0 = y0`).

With `dx = x - x0`, `dy = y - y0`:

    potential = (gamma1 (dx^2 - dy^2)) / 2 + gamma2 dx dy,
    deflection = (gamma1 dx + gamma2 dy, gamma2 dx - gamma1 dy),
    Hessian = (gamma1, gamma2, -gamma1), convergence 0, magnification 1 / (1 - |gamma|^2).

The origin `(x0, y0)` changes the potential and deflection by a plane and a constant
(unobservable), and nothing else. All exact to rounding.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from jaxgal._validate import all_concrete, check_range, is_traced
from jaxgal.lensing.mass import MassModel, Positions, Values, broadcast_parameters


class ExternalShear(MassModel):
    """A constant external shear (the tidal field of the lens's surroundings).

    Attributes:
        gamma1, gamma2: shear components (dimensionless), `sqrt(gamma1^2 + gamma2^2) < 1`;
            `gamma1 > 0` stretches images along y, as in lenstronomy.
        x0, y0: the origin of the potential and deflection in arcsec, offset from the image
            centre (default 0).

    Every attribute may carry the same leading batch axes (a batch of lenses), which
    `jax.vmap` maps over. Values out of range raise `ValueError` when concrete; inside `jit`
    call `checked()` to raise at run time.
    """

    gamma1: Float[Array, "..."]
    gamma2: Float[Array, "..."]
    x0: Float[Array, "..."]
    y0: Float[Array, "..."]

    def __init__(self, gamma1, gamma2, x0=0.0, y0=0.0):
        broadcast_parameters(
            self, dict(gamma1=gamma1, gamma2=gamma2, x0=x0, y0=y0), "ExternalShear"
        )

    def __check_init__(self):
        # Concrete values are checked here; traced ones by `checked()` inside jit.
        if all_concrete(self):
            self._checked_fields()

    def checked(self) -> ExternalShear:
        """This shear with every parameter checked; traced values raise inside jit."""
        return ExternalShear(**self._checked_fields())

    def _checked_fields(self) -> dict:
        gamma1 = check_range(self.gamma1, "ExternalShear gamma1")
        gamma2 = check_range(self.gamma2, "ExternalShear gamma2")
        return dict(
            gamma1=_check_magnitude(gamma1, gamma2),
            gamma2=gamma2,
            x0=check_range(self.x0, "ExternalShear x0"),
            y0=check_range(self.y0, "ExternalShear y0"),
        )

    def deflection(self, x: Positions, y: Positions) -> tuple[Values, Values]:
        """Deflection `(gamma1 dx + gamma2 dy, gamma2 dx - gamma1 dy)` in arcsec."""
        dx, dy = x - self.x0, y - self.y0
        return self.gamma1 * dx + self.gamma2 * dy, self.gamma2 * dx - self.gamma1 * dy

    def potential(self, x: Positions, y: Positions) -> Values:
        """Potential `gamma1 (dx^2 - dy^2) / 2 + gamma2 dx dy` in arcsec^2."""
        dx, dy = x - self.x0, y - self.y0
        return 0.5 * self.gamma1 * (dx - dy) * (dx + dy) + self.gamma2 * dx * dy

    def hessian(self, x: Positions, y: Positions) -> tuple[Values, Values, Values]:
        """`(gamma1, gamma2, -gamma1)` at every position."""
        ones = jnp.ones_like(x - self.x0 + y - self.y0)
        return self.gamma1 * ones, self.gamma2 * ones, -self.gamma1 * ones

    def hessian_determinant(self, x: Positions, y: Positions) -> Values:
        """`-(gamma1^2 + gamma2^2)` at every position."""
        f_xx, f_xy, _ = self.hessian(x, y)
        return -(f_xx * f_xx + f_xy * f_xy)


def _check_magnitude(gamma1, gamma2):
    """gamma1, raising if |gamma| = sqrt(gamma1^2 + gamma2^2) >= 1 (eagerly or inside jit)."""
    message = "ExternalShear |gamma| = sqrt(gamma1^2 + gamma2^2) out of range: must be < 1"
    if is_traced(gamma1) or is_traced(gamma2):
        return eqx.error_if(gamma1, jnp.any(jnp.hypot(gamma1, gamma2) >= 1.0), message)
    magnitude = np.hypot(np.asarray(gamma1), np.asarray(gamma2))
    if np.any(magnitude >= 1.0):
        raise ValueError(f"{message}; got {np.ravel(magnitude[magnitude >= 1.0])[:5].tolist()}")
    return gamma1
