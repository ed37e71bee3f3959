"""The Fourier transform of a Sersic profile's core, by a Hankel transform.

The core is the profile times a smooth taper of the circularised radius R: S(R) w(R / r1),
w = 1 for R <= r1, 0 for R >= `CORE_RATIO` r1. It is circular in the circularised frame,
so its two-dimensional Fourier transform is a Hankel transform of one variable,

    G(kappa) = 2 pi int_0^(ratio r1) S(R) w(R / r1) J0(kappa R) R dR / flux,

with kappa = |A^-T k| (A the frame's map, of determinant 1). In units of r1 (x = R / r1,
t = kappa r1) the Bessel factors J0(t_j x_i) at the quadrature nodes x_i and the table
nodes t_j are fixed numbers: the table of G for one galaxy is one matrix product, built
in numpy once per configuration. The light within x < `X_LUMP` (exact, from the
incomplete gamma function) enters as a point at the centre, J0 = 1 there.

Quadrature in x: composite 8-point Gauss-Legendre in log x from `X_LUMP` to `X_SPLIT`
(where a cusp's light is), then in x out to the core's edge, in panels short enough that
J0(t x) turns through at most `PHASE_PER_PANEL` radians in each for every t in the table.
The table is read with cubic Lagrange weights (spacing `TABLE_STEP`); beyond its end G is
taken as 0 (the caller caps |k| where the PSF has no power left).
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

from jaxgal.light.bessel import bessel_j
from jaxgal.light.sersic import Sersic, _safe_power, safe_sqrt
from jaxgal.light.taper import smooth_taper

CORE_RATIO = 3.0
X_LUMP = 1e-6
X_SPLIT = 0.05
LOG_PANELS = 16
PHASE_PER_PANEL = 6.0
TABLE_STEP = 0.25
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(8)


def _panels(start, end, count):
    width = (end - start) / count
    lefts = start + width * np.arange(count)
    nodes = (lefts[:, None] + 0.5 * width * (1.0 + _GL_NODES)).reshape(-1)
    return nodes, np.tile(0.5 * width * _GL_WEIGHTS, count)


@functools.lru_cache(maxsize=8)
def core_quadrature(t_max: float):
    """Nodes x_i, weights (of R dR / r1^2, times 2 pi), and J0(t_j x_i), t_j = (j-1) step."""
    log_x, log_weights = _panels(np.log(X_LUMP), np.log(X_SPLIT), LOG_PANELS)
    inner = np.exp(log_x)
    inner_weights = log_weights * inner * inner
    count = int(np.ceil(t_max * (CORE_RATIO - X_SPLIT) / PHASE_PER_PANEL))
    outer, outer_weights = _panels(X_SPLIT, CORE_RATIO, count)
    outer_weights = outer_weights * outer
    x = np.concatenate([inner, outer])
    weights = 2.0 * np.pi * np.concatenate([inner_weights, outer_weights])
    # one node before t = 0 (G is even in t) and two past t_max, for the cubic stencil
    t = TABLE_STEP * (np.arange(int(np.ceil(t_max / TABLE_STEP)) + 4) - 1.0)
    bessel = bessel_j(0, np.abs(t)[None, :] * x[:, None])
    return x, weights, bessel


def core_table(profile: Sersic, r1, t_max: float):
    """G at the table nodes t_j = (j - 1) TABLE_STEP, per unit flux, for one profile."""
    x, weights, bessel = core_quadrature(float(t_max))
    dtype = jnp.result_type(profile.r_eff)
    radius = jnp.asarray(x, dtype) * r1
    scaled = _safe_power(radius / profile.r_eff, 1.0 / profile.n)
    log_norm = profile.log_central_intensity_per_flux() + 2.0 * jnp.log(r1)
    taper = smooth_taper((jnp.asarray(x, dtype) - 1.0) / (CORE_RATIO - 1.0))
    masses = jnp.asarray(weights, dtype) * jnp.exp(log_norm - profile.b_n * scaled) * taper
    lump = profile.enclosed_fraction(X_LUMP * r1)
    return masses @ jnp.asarray(bessel, dtype) + lump


def table_stencil(length: int, t):
    """The cubic Lagrange stencil that reads a table of `length` nodes at t: the index of
    its second node (the stencil is index-1 .. index+2, inside the table), the fraction s
    past it, the four weights, and whether t is before the table's end (past it, G is 0)."""
    last = length - 3
    position = t / TABLE_STEP + 1.0
    base = jnp.clip(jnp.floor(position), 1, last - 1)
    s = position - base
    weights = (
        -s * (s - 1.0) * (s - 2.0) / 6.0,
        (s + 1.0) * (s - 1.0) * (s - 2.0) / 2.0,
        -(s + 1.0) * s * (s - 2.0) / 2.0,
        (s + 1.0) * s * (s - 1.0) / 6.0,
    )
    return base.astype(jnp.int32), s, weights, position < last


def read_table(table, t):
    """G(t) from `core_table` by cubic Lagrange interpolation; 0 past the table's end."""
    index, _, weights, live = table_stencil(table.shape[-1], t)
    value = sum(w * table[index + j - 1] for j, w in enumerate(weights))
    return jnp.where(live, value, 0.0)


def rotated_wavenumbers(pa, kx, ky):
    """(k along the major axis, k along the minor one) on the grid (ky, kx), pa in degrees."""
    angle = jnp.deg2rad(pa)
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    return kx[None, :] * cos + ky[:, None] * sin, -kx[None, :] * sin + ky[:, None] * cos


def core_transform(profile: Sersic, kx, ky, r1, t_max: float):
    """G per unit flux at the wavenumbers (ky, kx) (a grid), centred on the profile.

    kappa = |A^-T k|: k along the major axis over sqrt(q), along the minor one times it.
    """
    k_major, k_minor = rotated_wavenumbers(profile.pa, kx, ky)
    kappa = safe_sqrt(k_major * k_major / profile.q + k_minor * k_minor * profile.q)
    return read_table(core_table(profile, r1, t_max), kappa * r1)
