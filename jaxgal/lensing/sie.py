"""The singular isothermal ellipsoid (SIE), per `CONVENTIONS.md` (lenstronomy's convention).

    kappa = theta_e / (2 sqrt(q x'^2 + y'^2 / q)),

with `x'` along the major axis at position angle `pa` (degrees, counter-clockwise from +x)
and `0 < q <= 1`; at `q = 1` it is the singular isothermal sphere of Einstein radius
`theta_e`. It is lenstronomy's `EPL` with `gamma = 2`.

Method (Kormann, Schneider & Bartelmann 1994; Keeton 2001). With `(c, s)` the unit vector
of `(x', y')`, `r` its length, `psi = sqrt(q^2 c^2 + s^2)` and `e^2 = 1 - q^2`:

    alpha_x' = theta_e sqrt(q) / e * atan(e c / psi),
    alpha_y' = theta_e sqrt(q) / e * atanh(e s / psi),
    potential = x' alpha_x' + y' alpha_y'   (the potential of an isothermal lens is
                                             homogeneous of degree 1, and 0 at the centre),
    kappa = theta_e sqrt(q) / (2 r psi),
    (gamma1, gamma2) = -kappa (cos 2 theta, sin 2 theta),

`theta` the polar angle of `(x - x0, y - y0)` on the sky (so `|gamma| = kappa` and
`det(Hessian) = 0`: the magnification is `1 / (1 - 2 kappa)`). The deflection is written
`alpha_x' = theta_e sqrt(q) z G(e^2 z^2)` with `z = c / psi`, and `alpha_y' = theta_e
sqrt(q) z G(-e^2 z^2)` with `z = s / psi`, where `G(u) = atan(sqrt u) / sqrt u` (and its
continuation `atanh(sqrt(-u)) / sqrt(-u)` for `u < 0`) is 0/0 at `q = 1`: for `|u| < 0.1` `G` is
its Taylor series `sum_k (-u)^k / (2k + 1)` to 16 terms (truncation < 3e-18), selected
by a double `jnp.where`, so values and gradients in `q` are smooth through `q = 1`,
exactly, in float32 as in float64. `1 - q^2` is formed as `(1 - q)(1 + q)`, exact near
`q = 1`. Every quantity depends on the position only through `r` and the direction, so
it keeps its accuracy from `r` = 1e-300 to far beyond the Einstein radius: against
lenstronomy's EPL (gamma = 2), for 0.2 <= q <= 1 and r from 1e-6 to 10 theta_e, within
1e-14 relative in float64 and 2e-6 in float32 (deflection relative to theta_e).
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from jaxgal._validate import all_concrete, check_range
from jaxgal.lensing.mass import MassModel, Positions, Values, broadcast_parameters

# Where the Taylor series of G replaces atan/atanh, and its number of terms: the first term
# left out is below 0.1^16 / 33 < 3e-18 relative.
SERIES_LIMIT = 0.1
SERIES_TERMS = 16
# At the centre itself, where kappa and the shear diverge, they are given at this distance
# (arcsec) along the major axis: finite (kappa = theta_e / (2e-12 sqrt(q))) in float32 too,
# also once multiplied by another lens's Hessian, for any sensible theta_e.
CENTRE_RADIUS = 1e-12


class SIE(MassModel):
    """A singular isothermal ellipsoid lens (lenstronomy's convention: its EPL, gamma = 2).

    Attributes:
        theta_e: Einstein radius in arcsec; > 0.
        q: axis ratio b/a of the convergence's isodensity contours, 0 < q <= 1.
        pa: position angle of the major axis in degrees, counter-clockwise from +x.
        x0, y0: centre in arcsec, offset from the image centre.

    Every attribute may carry the same leading batch axes (a batch of lenses), which
    `jax.vmap` maps over; the methods are written for one lens and work elementwise on
    arrays of positions. Values out of range raise `ValueError` when concrete; inside
    `jit` call `checked()` to raise at run time.

    At the exact centre the deflection (direction-dependent there) is `(0, 0)`, its mean
    around the centre, and the potential 0, its limit; the convergence and the shear
    (infinite there) are their finite values at `CENTRE_RADIUS` = 1e-12 arcsec along the
    major axis, so the magnification is about -1e-12 sqrt(q) / theta_e. Gradients with
    respect to every parameter are finite everywhere, the centre and `q = 1` included.
    """

    theta_e: Float[Array, "..."]
    q: Float[Array, "..."]
    pa: Float[Array, "..."]
    x0: Float[Array, "..."]
    y0: Float[Array, "..."]

    def __init__(self, theta_e, q, pa, x0=0.0, y0=0.0):
        broadcast_parameters(self, dict(theta_e=theta_e, q=q, pa=pa, x0=x0, y0=y0), "SIE")

    def __check_init__(self):
        # Concrete values are checked here; traced ones by `checked()` inside jit.
        if all_concrete(self):
            self._checked_fields()

    def checked(self) -> SIE:
        """This lens with every parameter checked; traced values raise inside jit."""
        return SIE(**self._checked_fields())

    def _checked_fields(self) -> dict:
        return dict(
            theta_e=check_range(self.theta_e, "SIE theta_e", low=0.0, low_inclusive=False),
            q=check_range(self.q, "SIE q", low=0.0, high=1.0, low_inclusive=False),
            pa=check_range(self.pa, "SIE pa"),
            x0=check_range(self.x0, "SIE x0"),
            y0=check_range(self.y0, "SIE y0"),
        )

    def _frame(self, x, y):
        """The position in the lens's frame: whether it is the centre, the radius r, the
        unit vector (c, s) along (major, minor) axes, and (cos pa, sin pa).

        At the centre r = CENTRE_RADIUS and (c, s) = (1, 0), so that nothing divides by 0
        (and no gradient is NaN) in the branch that `jnp.where` then discards or keeps.
        """
        angle = jnp.deg2rad(self.pa)
        cos_pa, sin_pa = jnp.cos(angle), jnp.sin(angle)
        dx = x - self.x0
        dy = y - self.y0
        x_major = dx * cos_pa + dy * sin_pa
        y_minor = -dx * sin_pa + dy * cos_pa
        at_centre = (x_major == 0) & (y_minor == 0)
        x_major = jnp.where(at_centre, CENTRE_RADIUS, x_major)
        y_minor = jnp.where(at_centre, 0.0, y_minor)
        radius = jnp.hypot(x_major, y_minor)
        return at_centre, radius, x_major / radius, y_minor / radius, cos_pa, sin_pa

    def _elliptical_factor(self, c, s):
        """psi = sqrt(q^2 c^2 + s^2), between q and 1."""
        return jnp.sqrt(self.q * self.q * c * c + s * s)

    def _deflection_in_frame(self, c, s):
        psi = self._elliptical_factor(c, s)
        eccentricity_squared = (1.0 - self.q) * (1.0 + self.q)
        along_major, along_minor = c / psi, s / psi
        scale = self.theta_e * jnp.sqrt(self.q)
        alpha_major = scale * along_major * _arctan_ratio(eccentricity_squared * along_major**2)
        alpha_minor = scale * along_minor * _arctan_ratio(-eccentricity_squared * along_minor**2)
        return alpha_major, alpha_minor

    def deflection(self, x: Positions, y: Positions) -> tuple[Values, Values]:
        """Deflection `(alpha_x, alpha_y)` in arcsec at `(x, y)` in arcsec; (0, 0) at the centre.

        Independent of the distance from the centre (isothermal); accurate to ~1e-14 of
        theta_e in float64 for any `0 < q <= 1` (the series of the module docstring near
        `q = 1`).
        """
        at_centre, _, c, s, cos_pa, sin_pa = self._frame(x, y)
        alpha_major, alpha_minor = self._deflection_in_frame(c, s)
        alpha_x = alpha_major * cos_pa - alpha_minor * sin_pa
        alpha_y = alpha_major * sin_pa + alpha_minor * cos_pa
        return jnp.where(at_centre, 0.0, alpha_x), jnp.where(at_centre, 0.0, alpha_y)

    def potential(self, x: Positions, y: Positions) -> Values:
        """Lensing potential in arcsec^2, `x' alpha_x' + y' alpha_y'`: 0 at the centre."""
        at_centre, radius, c, s, _, _ = self._frame(x, y)
        alpha_major, alpha_minor = self._deflection_in_frame(c, s)
        return jnp.where(at_centre, 0.0, radius * (c * alpha_major + s * alpha_minor))

    def convergence(self, x: Positions, y: Positions) -> Values:
        """Convergence `theta_e / (2 sqrt(q x'^2 + y'^2 / q))`; see the class for the centre."""
        _, radius, c, s, _, _ = self._frame(x, y)
        return self.theta_e * jnp.sqrt(self.q) / (2.0 * radius * self._elliptical_factor(c, s))

    def shear(self, x: Positions, y: Positions) -> tuple[Values, Values]:
        """Shear `-kappa (cos 2 theta, sin 2 theta)`, theta the polar angle on the sky."""
        _, gamma1, gamma2 = self._convergence_and_shear(x, y)
        return gamma1, gamma2

    def hessian(self, x: Positions, y: Positions) -> tuple[Values, Values, Values]:
        """`(f_xx, f_xy, f_yy) = (kappa + gamma1, gamma2, kappa - gamma1)`, from the closed
        forms of the convergence and shear (no differencing)."""
        kappa, gamma1, gamma2 = self._convergence_and_shear(x, y)
        return kappa + gamma1, gamma2, kappa - gamma1

    def _convergence_and_shear(self, x, y):
        _, _, c, s, cos_pa, sin_pa = self._frame(x, y)
        kappa = self.convergence(x, y)
        # the direction on the sky, rotated back from the lens's frame
        c_sky = c * cos_pa - s * sin_pa
        s_sky = c * sin_pa + s * cos_pa
        return kappa, kappa * (s_sky - c_sky) * (s_sky + c_sky), -2.0 * kappa * c_sky * s_sky

    def hessian_determinant(self, x: Positions, y: Positions) -> Values:
        """0: `|gamma| = kappa` everywhere, so `det(Hessian) = kappa^2 - |gamma|^2 = 0`."""
        return jnp.zeros_like(self.convergence(x, y))


def _arctan_ratio(u):
    """G(u) = atan(sqrt u) / sqrt u for u >= 0, atanh(sqrt(-u)) / sqrt(-u) for -1 < u < 0.

    Analytic through u = 0 (G(0) = 1); its Taylor series for |u| < SERIES_LIMIT. Both
    branches see safe arguments (the double `where`), so the gradient is finite everywhere.
    """
    small = jnp.abs(u) < SERIES_LIMIT
    u_series = jnp.where(small, u, 0.0)
    series = jnp.zeros_like(u_series)
    for k in reversed(range(SERIES_TERMS)):
        series = series * (-u_series) + 1.0 / (2 * k + 1)
    u_direct = jnp.where(small, 1.0, u)
    positive = u_direct > 0
    root_positive = jnp.sqrt(jnp.where(positive, u_direct, 1.0))
    root_negative = jnp.sqrt(jnp.where(positive, 0.25, -u_direct))
    direct = jnp.where(
        positive,
        jnp.arctan(root_positive) / root_positive,
        jnp.arctanh(root_negative) / root_negative,
    )
    return jnp.where(small, series, direct)
