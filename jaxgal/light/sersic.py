"""The Sersic profile, with the exact b_n, per `CONVENTIONS.md`.

    I(R) = I_e exp(-b_n [(R / r_eff)^(1/n) - 1]),   R = sqrt(q x'^2 + y'^2 / q),

with `x'` along the major axis at position angle `pa` (degrees, counter-clockwise from +x),
`r_eff` the circularised half-light radius and `flux` the total flux (integral to infinity).

`b_n` solves `P(2n, b_n) = 1/2` (P the regularised lower incomplete gamma function).
JAX has no `gammaincinv`, so it is found by Newton's method in log b, started from the
Ciotti & Bertin (1999) series; the gradient with respect to n comes from the implicit
function theorem (one Newton step on the converged root, with the iterations themselves
outside the gradient). Relative accuracy: a few ulp.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.special import gammainc, gammaln
from jaxtyping import Array, ArrayLike, Float

from jaxgal._validate import all_concrete, as_float, check_range

N_MIN = 0.3
N_MAX = 8.0


def _bn_newton_step(log_b, n):
    b = jnp.exp(log_b)
    a = 2.0 * n
    residual = gammainc(a, b) - 0.5
    # dP/dlog b = b * b^(a-1) e^-b / Gamma(a)
    slope = jnp.exp(a * log_b - b - gammaln(a))
    return log_b - residual / slope


@jax.jit
def sersic_bn(n: Float[ArrayLike, ...]) -> Float[Array, "..."]:
    """Exact Sersic b_n: the root of Gamma(2n) = 2 gamma(2n, b_n), for 0.3 <= n <= 8.

    Differentiable in n (implicit gradient). Works elementwise on arrays.
    """
    n = as_float(n)
    guess = (
        2.0 * n
        - 1.0 / 3.0
        + 4.0 / (405.0 * n)
        + 46.0 / (25515.0 * n**2)
        + 131.0 / (1148175.0 * n**3)
    )
    n_fixed = jax.lax.stop_gradient(n)
    log_b = jnp.log(jax.lax.stop_gradient(guess))
    # Quadratic convergence from a guess good to 1e-2 or better. A loop, not 8 unrolled
    # steps: the regularised gamma function is ~200 operations, and every program that
    # renders a Sersic holds this search (unrolled, 60 % of a render's program and of its
    # compile time).
    log_b = jax.lax.fori_loop(0, 8, lambda _, log_b: _bn_newton_step(log_b, n_fixed), log_b)
    # One more step with gradients on: at the root it carries d(log b)/dn = -dF/dn / dF/dlog b.
    return jnp.exp(_bn_newton_step(jax.lax.stop_gradient(log_b), n))


class Sersic(eqx.Module):
    """An elliptical Sersic light profile.

    Attributes:
        flux: total flux (integral to infinity), in image units (counts, e-, ...); >= 0.
        r_eff: circularised half-light radius in arcsec; > 0.
        n: Sersic index, 0.3 <= n <= 8.
        q: axis ratio b/a, 0 < q <= 1.
        pa: position angle of the major axis in degrees, counter-clockwise from +x.
        x0, y0: centre in arcsec, offset from the image centre.

    Every attribute may carry leading batch axes (a batch of galaxies is one Sersic whose
    leaves have a leading axis), which `jax.vmap` maps over.
    """

    flux: Float[Array, "..."]
    r_eff: Float[Array, "..."]
    n: Float[Array, "..."]
    q: Float[Array, "..."]
    pa: Float[Array, "..."]
    x0: Float[Array, "..."]
    y0: Float[Array, "..."]

    def __init__(self, flux, r_eff, n, q, pa, x0=0.0, y0=0.0):
        self.flux = as_float(flux)
        self.r_eff = as_float(r_eff)
        self.n = as_float(n)
        self.q = as_float(q)
        self.pa = as_float(pa)
        self.x0 = as_float(x0)
        self.y0 = as_float(y0)
        fields = ("flux", "r_eff", "n", "q", "pa", "x0", "y0")
        try:
            shape = jnp.broadcast_shapes(*(jnp.shape(getattr(self, name)) for name in fields))
        except ValueError:
            shapes = ", ".join(f"{name} {jnp.shape(getattr(self, name))}" for name in fields)
            raise ValueError(f"Sersic parameters have mismatched shapes: {shapes}") from None
        for name in fields:
            setattr(self, name, jnp.broadcast_to(getattr(self, name), shape))

    def __check_init__(self):
        # Concrete values are checked here; traced ones by `checked()` inside jit.
        if all_concrete(self):
            self._checked_fields()

    def checked(self) -> Sersic:
        """This profile with every parameter checked; traced values raise inside jit."""
        return Sersic(**self._checked_fields())

    def _checked_fields(self) -> dict:
        return dict(
            flux=check_range(self.flux, "Sersic flux", low=0.0),
            r_eff=check_range(self.r_eff, "Sersic r_eff", low=0.0, low_inclusive=False),
            n=check_range(self.n, "Sersic n", low=N_MIN, high=N_MAX),
            q=check_range(self.q, "Sersic q", low=0.0, high=1.0, low_inclusive=False),
            pa=check_range(self.pa, "Sersic pa"),
            x0=check_range(self.x0, "Sersic x0"),
            y0=check_range(self.y0, "Sersic y0"),
        )

    @property
    def b_n(self) -> Float[Array, "..."]:
        return sersic_bn(self.n)

    def log_central_intensity_per_flux(self) -> Float[Array, "..."]:
        """log(I(0) / flux) = log(I_e e^b_n / flux), per arcsec^2."""
        b = self.b_n
        return (
            2.0 * self.n * jnp.log(b)
            - jnp.log(2.0 * jnp.pi * self.n)
            - 2.0 * jnp.log(self.r_eff)
            - gammaln(2.0 * self.n)
        )

    def circularised_coordinates(self, x, y):
        """(u, v) with u^2 + v^2 = R^2: the frame in which the profile is circular.

        The map from (x, y) has determinant 1, so areas (and fluxes) are preserved.
        """
        angle = jnp.deg2rad(self.pa)
        cos, sin = jnp.cos(angle), jnp.sin(angle)
        dx = x - self.x0
        dy = y - self.y0
        x_major = dx * cos + dy * sin
        y_minor = -dx * sin + dy * cos
        root_q = jnp.sqrt(self.q)
        return x_major * root_q, y_minor / root_q

    def surface_brightness(self, x, y):
        """I(x, y), flux per arcsec^2, at positions in arcsec from the image centre."""
        u, v = self.circularised_coordinates(x, y)
        return self.radial_profile(jnp.sqrt(u * u + v * v))

    def radial_profile(self, radius):
        """I as a function of the circularised radius R (arcsec)."""
        scaled = _safe_power(radius / self.r_eff, 1.0 / self.n)
        # flux multiplies (not log flux adds), so flux = 0 has a finite gradient
        return self.flux * jnp.exp(self.log_central_intensity_per_flux() - self.b_n * scaled)

    def enclosed_fraction(self, radius):
        """Fraction of the total flux inside circularised radius R: P(2n, b_n (R/r_eff)^(1/n))."""
        scaled = _safe_power(radius / self.r_eff, 1.0 / self.n)
        return gammainc(2.0 * self.n, self.b_n * scaled)


def _safe_power(base, exponent):
    """base**exponent for base >= 0 with a finite gradient at base = 0."""
    positive = base > 0
    safe = jnp.where(positive, base, 1.0)
    return jnp.where(positive, jnp.exp(exponent * jnp.log(safe)), 0.0)


def safe_sqrt(x):
    """sqrt(x) for x >= 0 with a zero (not NaN) gradient at x = 0."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)
