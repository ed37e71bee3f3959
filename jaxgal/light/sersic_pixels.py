"""Exact integrals of an elliptical Sersic profile over the cells of a rectangular grid.

Method (Green's theorem in the circularised frame). The map (x, y) -> (u, v) of
`Sersic.circularised_coordinates` has determinant 1 and makes the profile circular, so the
flux in a cell is the integral of the circular profile I(r) over a parallelogram. Split the
parallelogram into the signed triangles (centre, A, B) spanned by its four edges, and each
triangle at the foot F of the perpendicular from the centre into two right triangles with
legs d = |OF| and s = |FB|. In polar coordinates about the centre, such a right triangle
holds

    R(d, s) = integral_0^atan(s/d) G(d / cos phi) dphi,     G(r) = integral_0^r I(p) p dp,

where G is the enclosed light per radian, a regularised incomplete gamma function:
G(r) = F / (2 pi) P(2n, b_n (r / r_eff)^(1/n)). With r = d cosh(v) and the identity
d / (r sqrt(r^2 - d^2)) = d / r^2 + (the rest),

    R(d, s) = d [H(rho) - H(d)] + integral_0^V G(d cosh v) e^-v / cosh^2 v dv,

with rho = sqrt(d^2 + s^2), V = asinh(s / d) and H(r) = J(r) - G(r) / r, where
J(r) = integral_0^r I(p) dp is another incomplete gamma function, P(n, ...). The first term
is exact; the second has a smooth integrand that decays as e^-3v, so a 16-point
Gauss-Legendre rule on [0, min(V, 6)] gives it to ~1e-9 of the cell flux. Nothing here
samples the profile near its centre: the cusp of an n = 8 profile, a centre on a pixel
corner or edge (d = 0, where R is linear in d), and q down to 0.05 are all integrated
exactly, and the result is smooth (differentiable) in every parameter.

The sum of the cell fluxes is the integral over the whole grid, since inner edges cancel.

Far from the centre, where the cell flux is a small difference of large triangle
integrals, a 4x4 Gauss-Legendre rule over the cell takes over, blended smoothly with the
exact method by the cell's circularised distance; where they overlap they agree to
better than 1e-6 of the cell flux.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln
from jaxtyping import Array, Float

from jaxgal.light.gamma_table import GammaTable
from jaxgal.light.sersic import Sersic, _safe_power, safe_sqrt
from jaxgal.light.taper import smooth_taper

V_NODES, V_WEIGHTS = np.polynomial.legendre.leggauss(16)
V_CAP = 6.0
CELL_NODES, CELL_WEIGHTS = np.polynomial.legendre.leggauss(4)
# Cells whose centre lies beyond NEAR_RATIO times the distance from their centre to their
# farthest corner (in the circularised frame) blend smoothly into Gauss-Legendre, which
# takes over fully at FAR_RATIO: a blend, not a switch, keeps the image smooth in every
# parameter.
NEAR_RATIO = 4.0
FAR_RATIO = 6.0


class RadialIntegrals(eqx.Module):
    """G(r) and H(r) of a circular Sersic profile (see the module docstring)."""

    enclosed: GammaTable
    line: GammaTable
    enclosed_scale: Float[Array, ""]
    line_scale: Float[Array, ""]
    b_n: Float[Array, ""]
    inverse_n: Float[Array, ""]
    r_eff: Float[Array, ""]

    @classmethod
    def of(cls, profile: Sersic) -> RadialIntegrals:
        n, b = profile.n, profile.b_n
        enclosed_scale = profile.flux / (2.0 * jnp.pi)
        line_scale = enclosed_scale * jnp.exp(
            n * jnp.log(b) + gammaln(n) - gammaln(2.0 * n) - jnp.log(profile.r_eff)
        )
        return cls(
            GammaTable.build(2.0 * n),
            GammaTable.build(n),
            enclosed_scale,
            line_scale,
            b,
            1.0 / n,
            profile.r_eff,
        )

    def gamma_argument(self, r):
        return self.b_n * _safe_power(r / self.r_eff, self.inverse_n)

    def enclosed_light(self, r):
        """G(r): light inside circularised radius r, per radian."""
        return self.enclosed_scale * self.enclosed(self.gamma_argument(r))

    def h(self, r):
        """H(r) = J(r) - G(r) / r, with H(0) = 0."""
        x = self.gamma_argument(r)
        positive = r > 0
        safe_r = jnp.where(positive, r, 1.0)
        g_over_r = jnp.where(positive, self.enclosed_scale * self.enclosed(x) / safe_r, 0.0)
        return self.line_scale * self.line(x) - g_over_r


def _right_triangle(radial: RadialIntegrals, d, s):
    """Signed integral over the right triangle with legs d (to the foot) and s (along the edge).

    Odd in d and in s, and smooth through d = 0 and s = 0.
    """
    d_abs = jnp.abs(d)
    rho = safe_sqrt(d * d + s * s)  # a vertex exactly at the centre: a finite gradient
    first = jnp.sign(s) * d * (radial.h(rho) - radial.h(d_abs))
    has_d = d_abs > 0
    safe_d = jnp.where(has_d, d_abs, 1.0)
    extent = jnp.where(has_d, jnp.clip(jnp.arcsinh(s / safe_d), -V_CAP, V_CAP), 0.0)
    nodes = 0.5 * extent[..., None] * (1.0 + V_NODES)
    cosh = jnp.cosh(nodes)
    integrand = (
        radial.enclosed_light(d_abs[..., None] * cosh) * jnp.exp(-jnp.abs(nodes)) / (cosh * cosh)
    )
    second = 0.5 * extent * jnp.sum(V_WEIGHTS * integrand, axis=-1)
    return first + jnp.sign(d) * second


def _edge_integrals(radial, u_a, v_a, u_b, v_b):
    """Signed integral over the triangle (centre, A, B) for each edge A -> B."""
    du, dv = u_b - u_a, v_b - v_a
    length = jnp.sqrt(du * du + dv * dv)
    eu, ev = du / length, dv / length
    d = u_a * ev - v_a * eu
    s_a = u_a * eu + v_a * ev
    s_b = u_b * eu + v_b * ev
    return _right_triangle(radial, d, s_b) - _right_triangle(radial, d, s_a)


def exact_cell_fluxes(
    profile: Sersic, x_edges: Float[Array, " nx+1"], y_edges: Float[Array, " ny+1"]
) -> Float[Array, "ny nx"]:
    """Flux of `profile` in each cell of the grid with these edges (arcsec, increasing)."""
    radial = RadialIntegrals.of(profile)
    xx, yy = jnp.meshgrid(x_edges, y_edges)
    u, v = profile.circularised_coordinates(xx, yy)
    horizontal = _edge_integrals(radial, u[:, :-1], v[:, :-1], u[:, 1:], v[:, 1:])
    vertical = _edge_integrals(radial, u[:-1, :], v[:-1, :], u[1:, :], v[1:, :])
    exact = horizontal[:-1, :] + vertical[:, 1:] - horizontal[1:, :] - vertical[:, :-1]

    # Far cells: Gauss-Legendre over the cell, free of the cancellation above.
    u_centre = 0.25 * (u[:-1, :-1] + u[:-1, 1:] + u[1:, :-1] + u[1:, 1:])
    v_centre = 0.25 * (v[:-1, :-1] + v[:-1, 1:] + v[1:, :-1] + v[1:, 1:])
    reach = jnp.zeros_like(u_centre)
    for corner_u, corner_v in ((u[:-1, :-1], v[:-1, :-1]), (u[:-1, 1:], v[:-1, 1:])):
        reach = jnp.maximum(reach, jnp.hypot(corner_u - u_centre, corner_v - v_centre))
    ratio = jnp.hypot(u_centre, v_centre) / reach
    blend = smooth_taper((ratio - NEAR_RATIO) / (FAR_RATIO - NEAR_RATIO))
    far = _gauss_legendre_cells(profile, x_edges, y_edges)
    return blend * exact + (1.0 - blend) * far


def _gauss_legendre_cells(profile, x_edges, y_edges):
    """4x4-point Gauss-Legendre integrals of the profile over each cell."""
    x_mid, x_half = 0.5 * (x_edges[1:] + x_edges[:-1]), 0.5 * (x_edges[1:] - x_edges[:-1])
    y_mid, y_half = 0.5 * (y_edges[1:] + y_edges[:-1]), 0.5 * (y_edges[1:] - y_edges[:-1])
    x_nodes = x_mid[:, None] + x_half[:, None] * CELL_NODES  # (nx, 4)
    y_nodes = y_mid[:, None] + y_half[:, None] * CELL_NODES  # (ny, 4)
    values = profile.surface_brightness(
        x_nodes[None, :, None, :], y_nodes[:, None, :, None]
    )  # (ny, nx, 4, 4)
    weights = CELL_WEIGHTS[:, None] * CELL_WEIGHTS[None, :]
    return jnp.sum(values * weights, axis=(-2, -1)) * (y_half[:, None] * x_half[None, :])
