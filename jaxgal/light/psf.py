"""Point-spread functions: Gaussian, Moffat and a pixelised (effective) PSF.

Each PSF gives `transfer(kx, ky, pixel_scale)`: on the grid of wavenumbers kx (nkx,) by
ky (nky,), an (nky, nkx) array of the Fourier transform of the kernel that
takes a surface brightness (flux per arcsec^2) to pixel values, divided by the pixel
area, at angular wavenumbers kx, ky (radians per arcsec). For the analytic PSFs that
kernel is the PSF convolved with the pixel (GalSim's `drawImage(method='auto')`); a
pixelised PSF is an effective PSF that already holds the pixel's response, so it is
interpolated between its samples with GalSim's Quintic interpolant and the pixel is not
integrated again (GalSim's `InterpolatedImage` drawn with `method='no_pixel'`).

Accuracy: the Gaussian and the pixel are exact; the Moffat transform 2 (k a / 2)^nu
K_nu(k a) / Gamma(nu), nu = beta - 1, comes from a 32-point trapezoid rule on K_nu's
integral representation (its integrand falls double-exponentially, so the rule converges
like exp(-pi^2 / step)), tabulated at 256 nodes in k and interpolated with cubic Hermite
polynomials (for beta >= 2.5, error < 1e-6 on a table to z = k alpha = 20 and < 5e-6 on
the longest, to z = 40, tested against scipy; for smaller beta the transform is not
smooth at k = 0 and the error near it grows); the Quintic's transform is integrated
piecewise with 48-point Gauss-Legendre (exact to rounding for |k| < 80 per pixel). The
analytic kernels are negligible beyond the band of any lattice finer than the pixels, so
their aliases (`sampling`) are left out; the Quintic's side lobes are not, so they are
summed.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln
from jaxtyping import Array, ArrayLike, Float

from jaxgal._validate import all_concrete, as_float, check_range, is_traced
from jaxgal.light.hermite import hermite_lookup
from jaxgal.light.sersic import safe_sqrt

FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def pixel_transfer(kx, ky, pixel_scale):
    """Fourier transform of the unit-area square pixel: sinc(kx p / 2) sinc(ky p / 2)."""
    return jnp.sinc(kx * pixel_scale / (2.0 * jnp.pi)) * jnp.sinc(ky * pixel_scale / (2.0 * jnp.pi))


class Gaussian(eqx.Module):
    """A circular Gaussian PSF of full width at half maximum `fwhm` (arcsec)."""

    fwhm: Float[Array, "..."]

    def __init__(self, fwhm):
        self.fwhm = as_float(fwhm)

    def __check_init__(self):
        if all_concrete(self):
            self._checked_fields()

    def checked(self) -> Gaussian:
        return Gaussian(*self._checked_fields())

    def _checked_fields(self):
        return (check_range(self.fwhm, "Gaussian fwhm", low=0.0, low_inclusive=False),)

    def profile(self, x, y):
        """Surface density (per arcsec^2, unit total) at offsets x, y (arcsec)."""
        sigma = self.fwhm / FWHM_PER_SIGMA
        return jnp.exp(-0.5 * (x * x + y * y) / (sigma * sigma)) / (2.0 * jnp.pi * sigma * sigma)

    def transfer(self, kx, ky, pixel_scale, sampling=None):
        kx, ky = kx[None, :], ky[:, None]
        sigma = self.fwhm / FWHM_PER_SIGMA
        psf = jnp.exp(-0.5 * sigma * sigma * (kx * kx + ky * ky))
        return psf * pixel_transfer(kx, ky, pixel_scale)


MAX_PSF_SHEAR = 0.9


class Moffat(eqx.Module):
    """A Moffat PSF, I(r) ~ (1 + (r / alpha)^2)^-beta, untruncated as in GalSim.

    `fwhm` in arcsec (of the circular profile); `beta` > 1.1 (below it the wings hold too
    much light to be useful). `g1`, `g2` (default 0, circular) shear it as GalSim's
    `Moffat(...).shear(g1=g1, g2=g2)` does: an area-preserving stretch by (1 + g) / (1 - g)
    along the position angle atan2(g2, g1) / 2, |g| < 1.
    """

    fwhm: Float[Array, "..."]
    beta: Float[Array, "..."]
    g1: Float[Array, "..."]
    g2: Float[Array, "..."]

    def __init__(self, fwhm, beta, g1=0.0, g2=0.0):
        fields = {"fwhm": fwhm, "beta": beta, "g1": g1, "g2": g2}
        fields = {name: as_float(value) for name, value in fields.items()}
        try:
            shape = jnp.broadcast_shapes(*(value.shape for value in fields.values()))
        except ValueError:
            shapes = ", ".join(f"{name} {value.shape}" for name, value in fields.items())
            raise ValueError(f"Moffat parameters have mismatched shapes: {shapes}") from None
        self.fwhm = jnp.broadcast_to(fields["fwhm"], shape)
        self.beta = jnp.broadcast_to(fields["beta"], shape)
        self.g1 = jnp.broadcast_to(fields["g1"], shape)
        self.g2 = jnp.broadcast_to(fields["g2"], shape)

    def __check_init__(self):
        if all_concrete(self):
            self._checked_fields()

    def checked(self) -> Moffat:
        return Moffat(*self._checked_fields())

    def _checked_fields(self):
        g1 = check_range(self.g1, "Moffat g1", low=-MAX_PSF_SHEAR, high=MAX_PSF_SHEAR)
        g2 = check_range(self.g2, "Moffat g2", low=-MAX_PSF_SHEAR, high=MAX_PSF_SHEAR)
        too_sheared = g1 * g1 + g2 * g2 > MAX_PSF_SHEAR**2
        message = f"Moffat shear |g| = sqrt(g1^2 + g2^2) must be <= {MAX_PSF_SHEAR}"
        if is_traced(too_sheared):  # traced fields, or concrete ones inside jit
            g1 = eqx.error_if(g1, too_sheared, message)
        elif np.any(too_sheared):
            raise ValueError(f"{message}, got {np.sqrt(np.max(g1 * g1 + g2 * g2)):.3g}")
        return (
            check_range(self.fwhm, "Moffat fwhm", low=0.0, low_inclusive=False),
            check_range(self.beta, "Moffat beta", low=1.1, high=100.0),
            g1,
            g2,
        )

    @property
    def scale_radius(self):
        """alpha, from fwhm = 2 alpha sqrt(2^(1/beta) - 1)."""
        return self.fwhm / (2.0 * jnp.sqrt(2.0 ** (1.0 / self.beta) - 1.0))

    def profile(self, x, y):
        """Surface density (per arcsec^2, unit total) at offsets x, y (arcsec)."""
        # I(S^-1 x): S^-1 = [[1 - g1, -g2], [-g2, 1 + g1]] / sqrt(1 - g^2)
        norm = 1.0 / jnp.sqrt(1.0 - self.g1 * self.g1 - self.g2 * self.g2)
        u = norm * ((1.0 - self.g1) * x - self.g2 * y)
        v = norm * (-self.g2 * x + (1.0 + self.g1) * y)
        alpha = self.scale_radius
        radius2 = (u * u + v * v) / (alpha * alpha)
        return (self.beta - 1.0) / (jnp.pi * alpha * alpha) * (1.0 + radius2) ** (-self.beta)

    def transfer(self, kx, ky, pixel_scale, sampling=None):
        kx, ky = kx[None, :], ky[:, None]
        # The sheared profile is I(S^-1 x) with S = [[1 + g1, g2], [g2, 1 - g1]] / sqrt(1 - g^2)
        # symmetric and of unit determinant, so its transform is the circular one at S k.
        norm = 1.0 / jnp.sqrt(1.0 - self.g1 * self.g1 - self.g2 * self.g2)
        sheared_x = norm * ((1.0 + self.g1) * kx + self.g2 * ky)
        sheared_y = norm * (self.g2 * kx + (1.0 - self.g1) * ky)
        # safe at k = 0, whose tangent is 0 when the pixel scale moves (a NaN otherwise)
        k = safe_sqrt(sheared_x * sheared_x + sheared_y * sheared_y)
        psf = moffat_transfer_table(self.beta, self.scale_radius, jnp.max(k))(k)
        return psf * pixel_transfer(kx, ky, pixel_scale)


TRAPEZOID_NODES = 32
MOFFAT_TABLE_NODES = 256
MOFFAT_Z_MAX = 40.0


def _scaled_bessel_k(z, order):
    """z^order K_order(z) and its derivative -z^order K_(order-1)(z), for z > 0.

    Trapezoid rule on K_nu(z) = integral_0^inf exp(-z cosh t) cosh(nu t) dt, over
    [0, acosh(1 + 50 / z)] where the integrand has fallen below e^-50 of its peak.
    """
    upper = jnp.arccosh(1.0 + 50.0 / z)
    step = upper / (TRAPEZOID_NODES - 1)
    t = step[..., None] * jnp.arange(TRAPEZOID_NODES)
    weights = jnp.ones(TRAPEZOID_NODES).at[0].set(0.5).at[-1].set(0.5)
    decay = jnp.exp(-z[..., None] * jnp.cosh(t) + order * jnp.log(z[..., None]))
    k_nu = step * jnp.sum(weights * decay * jnp.cosh(order * t), axis=-1)
    k_nu_minus = step * jnp.sum(weights * decay * jnp.cosh((order - 1.0) * t), axis=-1)
    return k_nu, -k_nu_minus


def moffat_transfer_table(beta, scale_radius, k_max):
    """The Moffat's Fourier transform as a function of |k| in [0, k_max], tabulated."""
    order = beta - 1.0
    # past z = 40 the transform is below 1e-15: the table stops there and holds its last value
    z_max = jnp.minimum(k_max * scale_radius, MOFFAT_Z_MAX)
    z_nodes = z_max * jnp.arange(1, MOFFAT_TABLE_NODES + 1) / MOFFAT_TABLE_NODES
    values, slopes = _scaled_bessel_k(z_nodes, order)
    # 2 (z/2)^nu K_nu(z) / Gamma(nu) -> 1 at z = 0.
    norm = jnp.exp(np.log(2.0) - order * np.log(2.0) - gammaln(order))
    step = z_max / MOFFAT_TABLE_NODES
    values = jnp.concatenate([jnp.ones(1, values.dtype), norm * values])
    # At z = 0 the slope is 0 for beta > 2; for smaller beta the transform has a cusp
    # there (it is e^-z at beta = 1.5), so the first interval takes the secant's slope.
    start_slope = jnp.where(order > 1.0, 0.0, (values[1] - 1.0) / step)
    slopes = jnp.concatenate([start_slope[None], norm * slopes])

    def table(k):
        position = jnp.clip(k * scale_radius / step, 0.0, MOFFAT_TABLE_NODES)
        index = jnp.clip(jnp.floor(position), 0, MOFFAT_TABLE_NODES - 1).astype(jnp.int32)
        t = position - index
        return hermite_lookup(values, slopes, index, t, step)

    return table


# GalSim's Quintic interpolant (Bernstein & Gruen 2014): on |x| in [j, j+1], a polynomial
# in t = |x| - j with these coefficients of t^0 ... t^5.
QUINTIC_PIECES = np.array(
    [
        [1.0, 0.0, 0.0, -95.0 / 12.0, 23.0 / 2.0, -55.0 / 12.0],
        [0.0, -2.0 / 3.0, 1.0 / 24.0, 33.0 / 8.0, -139.0 / 24.0, 55.0 / 24.0],
        [0.0, 1.0 / 12.0, 1.0 / 12.0, -7.0 / 8.0, 7.0 / 6.0, -11.0 / 24.0],
    ]
)
_QUINTIC_NODES, _QUINTIC_WEIGHTS = np.polynomial.legendre.leggauss(48)


def quintic_kernel(x):
    """The Quintic interpolation kernel at x (in pixels); zero for |x| >= 3."""
    distance = jnp.abs(x)
    piece = jnp.clip(jnp.floor(distance), 0, 2).astype(jnp.int32)
    t = distance - piece
    coefficients = jnp.asarray(QUINTIC_PIECES)[piece]
    value = sum(coefficients[..., power] * t**power for power in range(6))
    return jnp.where(distance < 3.0, value, 0.0)


def quintic_transfer(wavenumber):
    """Fourier transform of the Quintic kernel at `wavenumber` (radians per pixel)."""
    t = 0.5 * (_QUINTIC_NODES + 1.0)
    total = 0.0
    for piece in range(3):
        poly = sum(QUINTIC_PIECES[piece, power] * t**power for power in range(6))
        total = total + jnp.sum(
            _QUINTIC_WEIGHTS * 0.5 * poly * jnp.cos(wavenumber[..., None] * (piece + t)), axis=-1
        )
    return 2.0 * total


SUM_TOLERANCE = 1e-3


class PixelPSF(eqx.Module):
    """An effective PSF image, sampled at the image's pixel scale.

    `kernel` has odd sides, is centred on its middle pixel, holds no negative values and
    sums to 1 (checked to 1e-3, not renormalised).
    """

    kernel: Float[Array, "... ky kx"]

    def __init__(self, kernel: Float[ArrayLike, "... ky kx"]):
        self.kernel = as_float(kernel)
        shape = self.kernel.shape
        if len(shape) < 2 or shape[-1] % 2 == 0 or shape[-2] % 2 == 0:
            raise ValueError(f"PixelPSF kernel must have odd sides, got shape {shape}")

    def __check_init__(self):
        if all_concrete(self):
            self._checked_kernel()

    def checked(self) -> PixelPSF:
        return PixelPSF(self._checked_kernel())

    def _checked_kernel(self):
        kernel = check_range(self.kernel, "PixelPSF kernel values", low=0.0)
        if not is_traced(kernel):
            check_range(
                np.sum(np.asarray(kernel), axis=(-2, -1)),
                "PixelPSF kernel sum",
                low=1.0 - SUM_TOLERANCE,
                high=1.0 + SUM_TOLERANCE,
            )
            return kernel
        far_from_one = jnp.abs(jnp.sum(kernel, axis=(-2, -1)) - 1.0) > SUM_TOLERANCE
        return eqx.error_if(
            kernel, jnp.any(far_from_one), f"PixelPSF kernel sum must be 1 +- {SUM_TOLERANCE}"
        )

    def transfer(self, kx, ky, pixel_scale, sampling=None):
        """As for the analytic PSFs; with `sampling` (the spacing of a lattice on which the
        kernel is used), the transform of the kernel sampled on that lattice: the sum of the
        aliases k + 2 pi j / sampling, which the Quintic's side lobes make necessary."""
        ny, nx = self.kernel.shape[-2:]
        offsets_x = (jnp.arange(nx) - (nx - 1) / 2) * pixel_scale
        offsets_y = (jnp.arange(ny) - (ny - 1) / 2) * pixel_scale
        phase_x = jnp.exp(-1j * kx[..., None] * offsets_x)  # (nkx, nx)
        phase_y = jnp.exp(-1j * ky[..., None] * offsets_y)  # (nky, ny)
        samples = phase_y @ self.kernel.astype(phase_y.dtype) @ phase_x.T  # (nky, nkx)
        return samples * (
            _aliased_quintic(ky * pixel_scale, pixel_scale, sampling)[:, None]
            * _aliased_quintic(kx * pixel_scale, pixel_scale, sampling)[None, :]
        )


ALIASES = 2


def _aliased_quintic(wavenumber, pixel_scale, sampling):
    if sampling is None:
        return quintic_transfer(wavenumber)
    period = 2.0 * jnp.pi * pixel_scale / sampling
    shifts = period * jnp.arange(-ALIASES, ALIASES + 1)
    return jnp.sum(quintic_transfer(wavenumber[:, None] + shifts), axis=-1)
