"""Critical curves (where `det(I - Hessian) = 0`) and caustics, their image in the source plane.

For lenses of SIEs sharing one centre `c` and external shears (see `point_source`). The
Hessian of an SIE at `theta = c + r u(phi)` is `2 kappa t t^T` with `t = (-sin phi, cos
phi)` the tangential direction (its shear has `|gamma| = kappa`, along the radius): of rank
one, in the same direction for every SIE about `c`. So the SIEs' Hessian is `M(phi) / r`
with `det M = 0`, the shears' a constant `Gamma`, and along the ray (for 2x2 matrices
`det(X - Y) = det X - tr(adj(X) Y) + det Y`)

    det A(r) = det(I - Gamma) - tr(adj(I - Gamma) M(phi)) / r,

which vanishes once, at `r(phi) = tr(adj(I - Gamma) M(phi)) / det(I - Gamma)`, positive
for a total shear below 1. That is the tangential critical curve, in closed form (no
iteration, no search range); there is no radial critical curve (`det A -> -inf` at the
singular centre, which the inner limit of every ray maps to the cut below).

Caustics are the critical points mapped by the lens equation. A singular isothermal centre
also has a cut (pseudo-caustic): the limit of the lens equation as `r -> 0` along each ray,
`c - alpha_iso(phi) - alpha_shear(c)`. A source outside the cut has one image fewer: 1
outside both cut and caustic, 2 inside the cut only, 3 inside the caustic only (a naked
cusp), 4 inside both (more in rare configurations, see `image_positions`).

Accuracy: exact to rounding (`det A` at the points ~1e-16 of its terms in float64). The
points are equally spaced in polar angle about the centre, not in arc length (the caustic's
cusps are where they crowd). Every field is differentiable with respect to the lens.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from jaxgal.lensing.mass import MassModels, deflection
from jaxgal.lensing.point_source import PolarLens


class CriticalCurves(eqx.Module):
    """The tangential critical curve, its caustic and the cut of a lens, at `n_points`
    polar angles about the SIEs' centre.

    Attributes:
        x, y: critical points in arcsec.
        caustic_x, caustic_y: the same points mapped to the source plane, in arcsec.
        cut_x, cut_y: the cut (pseudo-caustic) in the source plane, in arcsec.
        angle: the polar angles (radians, about the SIEs' centre) of the points.
    """

    x: Float[Array, " n_points"]
    y: Float[Array, " n_points"]
    caustic_x: Float[Array, " n_points"]
    caustic_y: Float[Array, " n_points"]
    cut_x: Float[Array, " n_points"]
    cut_y: Float[Array, " n_points"]
    angle: Float[Array, " n_points"]


def critical_curves(mass: MassModels, *, n_points: int = 512) -> CriticalCurves:
    """The critical curve, caustic and cut of `mass` (an SIE, or SIEs sharing a centre and
    external shears), at `n_points` equally spaced polar angles about the SIEs' centre.

    One lens: map over a batch with `jax.vmap`. jit-able (`n_points` is static) and
    differentiable. Method and accuracy: see the module docstring.
    """
    # built (and checked) outside jit, so that concrete bad input raises ValueError at once
    return _critical_curves(PolarLens(mass), mass, n_points)


@functools.partial(jax.jit, static_argnums=2)
def _critical_curves(lens, mass, n_points):
    angle = jnp.arange(n_points, dtype=jnp.result_type(lens.centre_x)) * (2 * jnp.pi / n_points)
    m_xx, m_xy, m_yy = lens.isothermal_hessian_at_unit_radius(angle)
    # tr(adj(I - Gamma) M) / det(I - Gamma)
    adjugate_xx, adjugate_yx = lens.adjugate_times(m_xx, m_xy)
    adjugate_xy, adjugate_yy = lens.adjugate_times(m_xy, m_yy)
    radius = (adjugate_xx + adjugate_yy) / lens.lens_matrix_determinant()
    cos, sin = lens.unit_vectors(angle)
    x = lens.centre_x + radius * cos
    y = lens.centre_y + radius * sin
    alpha_x, alpha_y = deflection(mass, x, y)
    alpha_iso_x, alpha_iso_y = lens.isothermal_deflection(angle)
    return CriticalCurves(
        x=x,
        y=y,
        caustic_x=x - alpha_x,
        caustic_y=y - alpha_y,
        cut_x=lens.centre_x - alpha_iso_x - lens.shear_x,
        cut_y=lens.centre_y - alpha_iso_y - lens.shear_y,
        angle=angle,
    )
