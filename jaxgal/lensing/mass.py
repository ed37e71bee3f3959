"""Mass models and the lensing quantities of several of them together.

A mass model gives, at image-plane positions `(x, y)` in arcsec (offsets from the image
centre, per `CONVENTIONS.md`), the deflection `alpha = grad psi` (arcsec), the lensing
potential `psi` (arcsec^2) and its Hessian `(f_xx, f_xy, f_yy)` (dimensionless), from which
the convergence `kappa = (f_xx + f_yy) / 2`, the shear `(gamma1, gamma2) =
((f_xx - f_yy) / 2, f_xy)` and the magnification `1 / det(I - Hessian)` follow.

Deflections, potentials and Hessians add, so the functions here take one model or a
sequence (tuple or list) of them: `deflection((sie, shear), x, y)` is the deflection of
the SIE and the external shear together. The magnification does not add: it is `1 / det(I -
sum of Hessians)`, expanded so that no large terms cancel (see `magnification`).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from jaxgal._validate import as_float

Positions = Float[ArrayLike, "*points"]
Values = Float[Array, "*points"]


class MassModel(eqx.Module):
    """A lens's projected mass, for one lens, evaluated elementwise over positions.

    Subclasses give the deflection, potential and Hessian; the convergence, shear and
    magnification here follow from the Hessian, and a subclass may override them with a
    more direct form. A batch of lenses is one model whose parameters have leading axes:
    map over it with `jax.vmap`.
    """

    @abc.abstractmethod
    def deflection(self, x: Positions, y: Positions) -> tuple[Values, Values]:
        """Deflection `(alpha_x, alpha_y)` in arcsec at `(x, y)` in arcsec."""

    @abc.abstractmethod
    def potential(self, x: Positions, y: Positions) -> Values:
        """Lensing potential `psi` in arcsec^2 at `(x, y)` in arcsec."""

    @abc.abstractmethod
    def hessian(self, x: Positions, y: Positions) -> tuple[Values, Values, Values]:
        """Second derivatives `(f_xx, f_xy, f_yy)` of the potential (dimensionless)."""

    def convergence(self, x: Positions, y: Positions) -> Values:
        """Convergence `kappa = (f_xx + f_yy) / 2` (dimensionless)."""
        f_xx, _, f_yy = self.hessian(x, y)
        return 0.5 * (f_xx + f_yy)

    def shear(self, x: Positions, y: Positions) -> tuple[Values, Values]:
        """Shear `(gamma1, gamma2) = ((f_xx - f_yy) / 2, f_xy)` (dimensionless)."""
        f_xx, f_xy, f_yy = self.hessian(x, y)
        return 0.5 * (f_xx - f_yy), f_xy

    def hessian_determinant(self, x: Positions, y: Positions) -> Values:
        """`f_xx f_yy - f_xy^2`; a subclass whose determinant is known in closed form gives it,
        so that the magnification carries no cancellation where the Hessian is large."""
        f_xx, f_xy, f_yy = self.hessian(x, y)
        return f_xx * f_yy - f_xy * f_xy

    def magnification(self, x: Positions, y: Positions) -> Values:
        """Signed magnification `1 / det(I - Hessian)`; infinite on a critical curve."""
        return magnification(self, x, y)


MassModels = MassModel | Sequence[MassModel]


def deflection(mass: MassModels, x: Positions, y: Positions) -> tuple[Values, Values]:
    """Total deflection `(alpha_x, alpha_y)` in arcsec of one model or a sequence of them."""
    return _total(mass, lambda model: model.deflection(x, y))


def potential(mass: MassModels, x: Positions, y: Positions) -> Values:
    """Total lensing potential in arcsec^2 of one model or a sequence of them."""
    return _total(mass, lambda model: (model.potential(x, y),))[0]


def hessian(mass: MassModels, x: Positions, y: Positions) -> tuple[Values, Values, Values]:
    """Total Hessian `(f_xx, f_xy, f_yy)` of the potential of one model or a sequence."""
    return _total(mass, lambda model: model.hessian(x, y))


def convergence(mass: MassModels, x: Positions, y: Positions) -> Values:
    """Total convergence of one model or a sequence of them."""
    return _total(mass, lambda model: (model.convergence(x, y),))[0]


def shear(mass: MassModels, x: Positions, y: Positions) -> tuple[Values, Values]:
    """Total shear `(gamma1, gamma2)` of one model or a sequence of them."""
    return _total(mass, lambda model: model.shear(x, y))


def magnification(mass: MassModels, x: Positions, y: Positions) -> Values:
    """Signed magnification `1 / det(I - H)` of one model or a sequence, `H = sum_i H_i`.

    The determinant is expanded as `1 - sum_i tr H_i + sum_i det H_i + sum_{i<j} (H_i,xx
    H_j,yy + H_i,yy H_j,xx - 2 H_i,xy H_j,xy)`, with each model's own `det H_i`
    (`hessian_determinant`). Near a singular centre the Hessian of an SIE is huge but its
    determinant is 0 exactly, so no product of two large terms cancels: the magnification
    there (about `-1 / (2 kappa)`) is as accurate as kappa, where `(1 - f_xx)(1 - f_yy) -
    f_xy^2` loses `eps * kappa` relative (5e-10 in float64, 1e-6 arcsec from the centre of
    a 1 arcsec lens). It is infinite on a critical curve.
    """
    models = _as_models(mass)
    hessians = [model.hessian(x, y) for model in models]
    determinant = 1.0
    for index, (f_xx, f_xy, f_yy) in enumerate(hessians):
        determinant = determinant - (f_xx + f_yy) + models[index].hessian_determinant(x, y)
        for g_xx, g_xy, g_yy in hessians[index + 1 :]:
            determinant = determinant + f_xx * g_yy + f_yy * g_xx - 2.0 * f_xy * g_xy
    return 1.0 / determinant


def _as_models(mass: MassModels) -> tuple[MassModel, ...]:
    models = tuple(mass) if isinstance(mass, (tuple, list)) else (mass,)
    if not models:
        raise ValueError("an empty sequence of mass models has no lensing quantities")
    for model in models:
        if not isinstance(model, MassModel):
            raise TypeError(f"expected a jaxgal mass model, got {type(model).__name__}")
    return models


def _total(mass: MassModels, quantities):
    """Sum, component by component, the tuple `quantities(model)` over the models."""
    models = _as_models(mass)
    total = quantities(models[0])
    for model in models[1:]:
        total = tuple(a + b for a, b in zip(total, quantities(model), strict=True))
    return total


def broadcast_parameters(module: eqx.Module, values: dict, label: str) -> None:
    """Set each named parameter on `module` (in `__init__`) as a float array, all broadcast
    to one shape; a `ValueError` names every shape if they do not broadcast."""
    arrays = {name: as_float(value) for name, value in values.items()}
    try:
        shape = jnp.broadcast_shapes(*(jnp.shape(array) for array in arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{name} {jnp.shape(array)}" for name, array in arrays.items())
        raise ValueError(f"{label} parameters have mismatched shapes: {shapes}") from None
    for name, array in arrays.items():
        setattr(module, name, jnp.broadcast_to(array, shape))
