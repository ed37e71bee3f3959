"""Images of a point source: every solution of the lens equation `beta = theta - alpha(theta)`.

For lenses made of SIEs sharing one centre `c` and any number of external shears (every
mass model jaxgal has). The deflection of an SIE depends only on the direction from its
centre, and a shear's is linear, `alpha_shear(theta) = alpha_shear(c) + Gamma (theta - c)`
with `Gamma` the summed shear matrix. Writing `theta = c + r u(phi)`, `u = (cos phi,
sin phi)`, the lens equation becomes

    r (I - Gamma) u = w(phi) = beta - c + alpha_iso(phi) + alpha_shear(c),

so an image lies along each direction `phi` where `u` is parallel to `(I - Gamma)^-1 w`,
at the distance `r = u . (I - Gamma)^-1 w`, if that is positive. With `P = adj(I - Gamma)`
(`det(I - Gamma) > 0` for a total shear below 1) the images are the roots of the smooth,
2 pi-periodic

    F(phi) = u x P w(phi)     with     R(phi) = u . P w(phi) / det(I - Gamma) > 0.

Method (the classical reduction of an isothermal lens to one dimension, the polar angle,
solved here by bracketing rather than through a polynomial):
1. `F` and `dF/dphi` (from the Hessian) at `n_angles` equally spaced angles. A cell
   between two of them may hold roots where `F` changes sign over it, or where `|F|` falls
   at its start and rises at its end (the two images of a fold, however close together).
   Such cells and their neighbours (a cusp's three images across two cells leave one with
   two roots and no sign of them) are searched again on a grid `SUBDIVISIONS` times finer.
2. In each cell of the finer grid that may hold roots, the extremum of `F` (the root of the
   secant of `F'`, which is linear to ~1e-7 over such a cell) splits the cell into two
   monotone pieces, each holding at most one root, found by bisection to the last bit of
   `phi`. Roots with `R > 0` are images; the others solve the lens equation with `r < 0`,
   i.e. nothing.
3. One Newton step of the 2D lens equation, with the analytic Hessian, from the root held
   fixed: it corrects the last rounding and carries the gradients with respect to the lens
   and the source (implicit function theorem: `d theta = A^-1 (d alpha + d beta)`, `A =
   I - Hessian`), as `sersic_bn` does for `b_n`. The search itself is outside the gradient.
4. Images closer than `eps^(1/3)` of their distance from the centre (the same root found
   from two cells) count once; they are sorted by arrival time (first arrival first), as
   lenstronomy's `LensEquationSolver` sorts them.

Accuracy: the lens equation is solved to rounding, `|beta - theta + alpha| < 2e-15` arcsec
in float64 away from caustics and < 1e-11 within 1e-7 theta_e of a cusp (~2e-6 arcsec in
float32). Positions agree with lenstronomy's `LensEquationSolver` to its own precision
(1.3e-9 arcsec at most over the seed's population, cusps and folds included; see
tests/test_lensing_point_source.py), magnifications to 1.3e-13 relative.

Limitations: a cell of the finer grid (`2 pi / (16 n_angles)` of polar angle) must not hold
three images: a source within ~1e-8 theta_e of a cusp (default 1024 angles) may lose two.
A source exactly on a caustic gives a double root that rounding may keep or drop. The
singular centre is not an image (as in lenstronomy's solver): with `alpha = 0` there by
convention it solves the lens equation only for one source position, and with zero
magnification; an image just outside it (a source just inside the cut, see
`critical_curves`) is returned, strongly demagnified. Profiles that are not isothermal
about one centre (SIEs of different centres; any future profile) need a 2D solver and
raise `TypeError` / `ValueError` here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int

from jaxgal._validate import as_float, is_traced
from jaxgal.lensing.mass import (
    MassModels,
    deflection,
    hessian,
    magnification,
    potential,
)
from jaxgal.lensing.shear import ExternalShear
from jaxgal.lensing.sie import SIE

# Cells searched again (with their neighbours), and cells of the finer grid searched for one
# or two roots each: F has a sign change or a dip next to each image (no spurious root,
# r < 0, turned up): 4 at most in 4000 draws of SIE + shear up to |gamma| = 0.3, 8 in the
# rarest configurations; their neighbours triple the first count.
MAX_CELLS = 32
MAX_ROOT_CELLS = 16
# Each cell found is searched again on a grid this much finer (three images in one cell,
# next to a cusp, are then told apart).
SUBDIVISIONS = 16
# Halvings of a bracket: a cell of the finer grid, 2 pi / 16384, shrinks below one ulp of
# phi after 40 in float64.
BISECTIONS = 48


class PolarLens(eqx.Module):
    """A lens of SIEs sharing one centre and of external shears, in the form of the module
    docstring: the isothermal part as a function of direction, the shear part as a matrix.

    Attributes:
        isothermal: the SIEs (one centre).
        centre_x, centre_y: the SIEs' centre in arcsec.
        shear_xx, shear_xy, shear_yy: the summed shears' Hessian `Gamma` (0 without shear).
        shear_x, shear_y: the summed shears' deflection at the centre, in arcsec.
    """

    isothermal: tuple[SIE, ...]
    centre_x: Float[Array, ""]
    centre_y: Float[Array, ""]
    shear_xx: Float[Array, ""]
    shear_xy: Float[Array, ""]
    shear_yy: Float[Array, ""]
    shear_x: Float[Array, ""]
    shear_y: Float[Array, ""]

    def __init__(self, mass: MassModels):
        models = tuple(mass) if isinstance(mass, (tuple, list)) else (mass,)
        for model in models:
            if not isinstance(model, (SIE, ExternalShear)):
                raise TypeError(
                    "point-source images and critical curves are solved for SIEs and "
                    f"external shears; got {type(model).__name__}"
                )
        self.isothermal = tuple(model for model in models if isinstance(model, SIE))
        shears = tuple(model for model in models if isinstance(model, ExternalShear))
        if not self.isothermal:
            raise ValueError("point-source images and critical curves need at least one SIE")
        if jnp.ndim(self.isothermal[0].x0) != 0:
            raise ValueError(
                "one lens at a time: a batch of lenses (parameters with leading axes) goes "
                f"through jax.vmap; got SIE x0 of shape {jnp.shape(self.isothermal[0].x0)}"
            )
        self.centre_x, self.centre_y = _same_centre(self.isothermal)
        if shears:
            shear_xx, self.shear_xy, self.shear_yy = hessian(shears, self.centre_x, self.centre_y)
            self.shear_xx = _check_total_shear(shear_xx, self.shear_xy, self.shear_yy)
            self.shear_x, self.shear_y = deflection(shears, self.centre_x, self.centre_y)
        else:
            zero = jnp.zeros_like(self.centre_x)
            self.shear_xx = self.shear_xy = self.shear_yy = self.shear_x = self.shear_y = zero

    def lens_matrix_determinant(self) -> Array:
        """`det(I - Gamma)`, > 0."""
        return (1.0 - self.shear_xx) * (1.0 - self.shear_yy) - self.shear_xy * self.shear_xy

    def adjugate_times(self, v_x, v_y):
        """`adj(I - Gamma) v`."""
        return (
            (1.0 - self.shear_yy) * v_x + self.shear_xy * v_y,
            self.shear_xy * v_x + (1.0 - self.shear_xx) * v_y,
        )

    def unit_vectors(self, angle):
        return jnp.cos(angle), jnp.sin(angle)

    def isothermal_deflection(self, angle) -> tuple[Array, Array]:
        """The SIEs' deflection along direction `angle` (radians), at any distance."""
        cos, sin = self.unit_vectors(angle)
        return deflection(self.isothermal, self.centre_x + cos, self.centre_y + sin)

    def isothermal_hessian_at_unit_radius(self, angle):
        """`r` times the SIEs' Hessian along `angle` (it falls as 1 / r)."""
        cos, sin = self.unit_vectors(angle)
        return hessian(self.isothermal, self.centre_x + cos, self.centre_y + sin)


def _check_total_shear(shear_xx, shear_xy, shear_yy):
    """`shear_xx`, raising (eagerly or inside jit) if `det(I - Gamma) <= 0`: a total shear
    of 1 or more."""
    determinant = (1.0 - shear_xx) * (1.0 - shear_yy) - shear_xy * shear_xy
    message = "ExternalShear: the total |gamma| of the shears must be < 1"
    if is_traced(determinant):
        return eqx.error_if(shear_xx, determinant <= 0, message)
    if determinant <= 0:
        raise ValueError(f"{message}; got det(I - Gamma) = {float(determinant)}")
    return shear_xx


def _same_centre(isothermal: tuple[SIE, ...]):
    """The SIEs' common centre; raises (eagerly or inside jit) if they differ."""
    centre_x, centre_y = isothermal[0].x0, isothermal[0].y0
    message = "the SIEs of one lens must share a centre (x0, y0) for the polar solver"
    for model in isothermal[1:]:
        differs = (model.x0 != centre_x) | (model.y0 != centre_y)
        if is_traced(differs):
            centre_x = eqx.error_if(centre_x, differs, message)
        elif bool(np.any(differs)):
            raise ValueError(message)
    return centre_x, centre_y


class LensedImages(eqx.Module):
    """The images of a point source, in a fixed number of slots, first arrival first.

    Attributes:
        x, y: image positions in arcsec (the lens centre in an empty slot).
        magnification: signed magnification (negative for saddle points; 0 in an empty slot).
        fermat_potential: `|theta - beta|^2 / 2 - psi(theta)` in arcsec^2, the arrival time
            up to the time-delay distance factor (0 in an empty slot). Slots are sorted by it.
        valid: which slots hold an image.
        count: the number of images found; more than the slots if `max_images` is too small
            (the later arrivals are then dropped).
    """

    x: Float[Array, " max_images"]
    y: Float[Array, " max_images"]
    magnification: Float[Array, " max_images"]
    fermat_potential: Float[Array, " max_images"]
    valid: Bool[Array, " max_images"]
    count: Int[Array, ""]


def image_positions(
    mass: MassModels,
    source_x: Float[ArrayLike, ""],
    source_y: Float[ArrayLike, ""],
    *,
    max_images: int = 8,
    n_angles: int = 1024,
) -> LensedImages:
    """All images of a point source at `(source_x, source_y)` (arcsec) behind `mass`.

    `mass` is an SIE or a sequence of SIEs (one centre) and external shears; one lens and
    one source: map over batches with `jax.vmap`. jit-able (`max_images` and `n_angles` are
    static) and differentiable (positions, magnifications and Fermat potentials, with
    respect to every lens parameter and the source position), except where images appear
    or merge, on a caustic.

    SIE + shear gives 1 image (source outside the cut and the caustic), 2, 3 (a naked cusp)
    or 4; up to 8 where the shear nearly cancels the SIE's ellipticity and shrinks the
    caustic to a few milliarcsec with extra cusps, a source next to one of them. With the
    default `max_images = 8` every image found has a slot; `count` says if it ever does
    not. Method, accuracy and limitations: see the module docstring.
    """
    # built (and checked) outside jit, so that concrete bad input raises ValueError at once
    lens = PolarLens(mass)
    source_x, source_y = as_float(source_x), as_float(source_y)
    return _image_positions(lens, mass, source_x, source_y, max_images, n_angles)


# The solver is an entry point: jitted here (a call outside jit runs op by op for ~20 s),
# and inlined into any jit, vmap or grad around it.
@functools.partial(jax.jit, static_argnums=(4, 5))
def _image_positions(lens, mass, source_x, source_y, max_images, n_angles):
    search = jax.lax.stop_gradient((lens, source_x, source_y))
    angle, distance, found = _roots(*search, n_angles)
    found = found & (distance > 0)
    cos, sin = lens.unit_vectors(angle)
    # an empty slot keeps a finite point (1 arcsec from the centre) for the Newton step
    distance = jnp.where(found, distance, 1.0)
    x = search[0].centre_x + distance * cos
    y = search[0].centre_y + distance * sin
    x, y = _newton_step(mass, x, y, source_x, source_y)
    found = found & jnp.isfinite(x) & jnp.isfinite(y)
    found = found & ~_duplicates(x - lens.centre_x, y - lens.centre_y, found)

    arrival = 0.5 * ((x - source_x) ** 2 + (y - source_y) ** 2) - potential(mass, x, y)
    order = jnp.argsort(jnp.where(found, arrival, jnp.inf))[:max_images]
    x, y, arrival, valid = x[order], y[order], arrival[order], found[order]
    x = jnp.where(valid, x, lens.centre_x)
    y = jnp.where(valid, y, lens.centre_y)
    return LensedImages(
        x=x,
        y=y,
        magnification=jnp.where(valid, magnification(mass, x, y), 0.0),
        fermat_potential=jnp.where(valid, arrival, 0.0),
        valid=valid,
        count=jnp.sum(found),
    )


def _condition(lens: PolarLens, source_x, source_y, angle, *, slope: bool = False):
    """`F(phi)` and `R(phi)` of the module docstring, elementwise over angles, and with
    `slope` `dF/dphi` too, from the Hessian: `d alpha_iso / d phi` is the SIEs' Hessian at
    unit distance applied to `u'(phi) = (-sin phi, cos phi)`."""
    cos, sin = lens.unit_vectors(angle)
    alpha_x, alpha_y = lens.isothermal_deflection(angle)
    p_x, p_y = lens.adjugate_times(
        source_x - lens.centre_x + alpha_x + lens.shear_x,
        source_y - lens.centre_y + alpha_y + lens.shear_y,
    )
    condition = cos * p_y - sin * p_x
    along = cos * p_x + sin * p_y
    distance = along / lens.lens_matrix_determinant()
    if not slope:
        return condition, distance
    m_xx, m_xy, m_yy = lens.isothermal_hessian_at_unit_radius(angle)
    dp_x, dp_y = lens.adjugate_times(m_xy * cos - m_xx * sin, m_yy * cos - m_xy * sin)
    return condition, distance, cos * dp_y - sin * dp_x - along


def _roots(lens, source_x, source_y, n_angles):
    """The roots of F (2 MAX_ROOT_CELLS slots): angles, R there, and which slots hold one."""
    step = 2.0 * jnp.pi / n_angles
    grid = jnp.arange(n_angles + 1, dtype=source_x.dtype) * step
    # F at 2 pi is F at 0: one value for both, or a root there falls between two roundings
    values, _, slopes = _condition(lens, source_x, source_y, grid[:-1], slope=True)
    values, slopes = jnp.append(values, values[0]), jnp.append(slopes, slopes[0])
    # cells that may hold roots and their neighbours: three images of a cusp across two
    # cells leave one with two roots and two extrema of F, which only its neighbour (with
    # the third root) gives away
    candidates = _may_hold_roots(values, slopes)
    candidates = candidates | jnp.roll(candidates, 1) | jnp.roll(candidates, -1)
    (cells,) = jnp.nonzero(candidates, size=MAX_CELLS, fill_value=-1)
    searched = cells >= 0
    cells = jnp.where(searched, cells, 0)

    # each cell found is divided into SUBDIVISIONS and searched again, its ends kept
    fraction = jnp.arange(SUBDIVISIONS + 1, dtype=grid.dtype) / SUBDIVISIONS
    angles = grid[cells, None] + fraction * step
    angles = angles.at[:, -1].set(grid[cells + 1])
    inner_values, distances, inner_slopes = _condition(lens, source_x, source_y, angles, slope=True)
    values = inner_values.at[:, 0].set(values[cells]).at[:, -1].set(values[cells + 1])
    slopes = inner_slopes.at[:, 0].set(slopes[cells]).at[:, -1].set(slopes[cells + 1])
    candidates = _may_hold_roots(values, slopes) & searched[:, None]
    (subcells,) = jnp.nonzero(candidates.ravel(), size=MAX_ROOT_CELLS, fill_value=-1)
    searched = subcells >= 0
    row, column = jnp.divmod(jnp.where(searched, subcells, 0), SUBDIVISIONS)

    start, end = angles[row, column], angles[row, column + 1]
    start_value, end_value = values[row, column], values[row, column + 1]
    start_slope, end_slope = slopes[row, column], slopes[row, column + 1]
    # The extremum of F, if any, splits the cell into two pieces where F is monotone. It is
    # the root of F', linear to ~1e-7 over a cell of 2 pi / 16384: the secant's root falls
    # between the two images of a fold (tested to 1e-10 theta_e from the caustic).
    has_extremum = (start_slope > 0) != (end_slope > 0)
    weight = jnp.where(has_extremum, start_slope / (start_slope - end_slope), 1.0)
    extremum = start + weight * (end - start)
    extremum_value, extremum_distance = _condition(lens, source_x, source_y, extremum)
    extremum_value = jnp.where(has_extremum, extremum_value, end_value)
    low = jnp.concatenate([start, extremum])
    high = jnp.concatenate([extremum, end])
    low_value = jnp.concatenate([start_value, extremum_value])
    high_value = jnp.concatenate([extremum_value, end_value])
    low_distance = jnp.concatenate([distances[row, column], extremum_distance])
    bracketed = ((low_value > 0) != (high_value > 0)) & jnp.concatenate([searched, searched])

    def condition(angle):
        return _condition(lens, source_x, source_y, angle)

    angle, distance = _bisect(condition, low, high, low_value > 0, low_distance)
    return angle, distance, bracketed


def _may_hold_roots(values, slopes):
    """Whether each cell between consecutive samples (last axis) may hold roots of F: F
    changes sign (`F > 0` flips; a zero counts as negative, as in `_bisect`), or `|F|`
    falls at its start and rises at its end (two roots, or none)."""
    start_value, end_value = values[..., :-1], values[..., 1:]
    start_slope, end_slope = slopes[..., :-1], slopes[..., 1:]
    crossing = (start_value > 0) != (end_value > 0)
    dip = ((start_value > 0) == (start_slope < 0)) & ((end_value > 0) == (end_slope > 0))
    return crossing | dip


def _bisect(function: Callable, low, high, low_positive, low_distance):
    """A root of `F` in each bracket `[low, high]` (elementwise), by bisection, and `R` there:
    `function` gives both, `low_positive` is whether `F(low) > 0`, `low_distance` is `R(low)`.
    The root returned is the bracket's end where `F` has the sign it has at `low`, so `R`
    comes with it and needs no evaluation of its own."""

    def halve(_, bracket):
        low, high, low_positive, low_distance = bracket
        middle = 0.5 * (low + high)
        middle_value, middle_distance = function(middle)
        same = (middle_value > 0) == low_positive
        return (
            jnp.where(same, middle, low),
            jnp.where(same, high, middle),
            low_positive,
            jnp.where(same, middle_distance, low_distance),
        )

    bracket = (low, high, low_positive, low_distance)
    low, _, _, low_distance = jax.lax.fori_loop(0, BISECTIONS, halve, bracket)
    return low, low_distance


def _newton_step(mass, x, y, source_x, source_y):
    """One Newton step of `theta - alpha(theta) = beta` from `(x, y)` held fixed.

    The gradients of the new point with respect to the lens and the source are the implicit
    ones, `A^-1 (d alpha + d beta)` with `A = I - Hessian`: only the residual carries them,
    since at a root the derivative of `A^-1` multiplies a zero residual (and leaving it out
    keeps the backward pass small).
    """
    x, y = jax.lax.stop_gradient((x, y))
    alpha_x, alpha_y = deflection(mass, x, y)
    residual_x = x - alpha_x - source_x
    residual_y = y - alpha_y - source_y
    f_xx, f_xy, f_yy = jax.lax.stop_gradient(hessian(mass, x, y))
    determinant = (1.0 - f_xx) * (1.0 - f_yy) - f_xy * f_xy
    # exactly on a critical curve the step is undefined; keep it finite
    determinant = jnp.where(determinant == 0, jnp.finfo(x.dtype).tiny, determinant)
    step_x = ((1.0 - f_yy) * residual_x + f_xy * residual_y) / determinant
    step_y = (f_xy * residual_x + (1.0 - f_xx) * residual_y) / determinant
    return x - step_x, y - step_y


def _duplicates(dx, dy, found):
    """Whether an image repeats an earlier one: the same root found from two cells (on a
    cell's edge, or in the flat F around a cusp). Images closer than eps^(1/3) of their
    distance from the centre (1e-5 arcsec in float64) count as one."""
    distance = jnp.hypot(dx, dy)
    tolerance = jnp.finfo(dx.dtype).eps ** (1.0 / 3.0) * distance
    separation = jnp.hypot(dx[:, None] - dx[None, :], dy[:, None] - dy[None, :])
    earlier = jnp.tril(jnp.ones(separation.shape, bool), k=-1)
    close = separation < tolerance[:, None]
    return jnp.any(earlier & found[None, :] & close, axis=1)
