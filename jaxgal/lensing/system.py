"""A strong lens: mass models, the light of the lensing galaxy, and a source behind it."""

from __future__ import annotations

from collections.abc import Sequence

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from jaxgal.lensing.mass import MassModel, deflection
from jaxgal.light.sersic import Sersic


def _as_tuple(value, kind, name: str) -> tuple:
    items = (value,) if isinstance(value, kind) else tuple(value)
    for item in items:
        if not isinstance(item, kind):
            raise TypeError(
                f"LensSystem {name} must be {kind.__name__} objects, got {type(item).__name__}"
            )
    return items


class LensSystem(eqx.Module):
    """A lens: `mass` (one `MassModel` or a sequence, whose deflections add), `source` (one
    `Sersic` or a sequence, in the source plane: its centre is a position there, in arcsec)
    and `lens_light` (None, one `Sersic` or a sequence, in the image plane, not lensed).

    The image plane is the sky as observed: a ray at image-plane position theta comes from
    source-plane position beta = theta - alpha(theta) (the lens equation), and the lensed
    source's surface brightness at theta is the source's at beta (lensing conserves surface
    brightness). Positions are arcsec from the image centre, per `CONVENTIONS.md`.
    """

    mass: tuple[MassModel, ...]
    source: tuple[Sersic, ...]
    lens_light: tuple[Sersic, ...]

    def __init__(
        self,
        mass: MassModel | Sequence[MassModel],
        source: Sersic | Sequence[Sersic],
        lens_light: Sersic | Sequence[Sersic] | None = None,
    ):
        self.mass = _as_tuple(mass, MassModel, "mass")
        self.source = _as_tuple(source, Sersic, "source")
        self.lens_light = () if lens_light is None else _as_tuple(lens_light, Sersic, "lens_light")
        if not self.mass:
            raise ValueError("LensSystem needs at least one mass model")
        if not self.source:
            raise ValueError("LensSystem needs at least one source")

    def checked(self) -> LensSystem:
        """This system with every parameter checked; traced values raise inside jit."""
        return LensSystem(
            tuple(model.checked() for model in self.mass),
            tuple(profile.checked() for profile in self.source),
            tuple(profile.checked() for profile in self.lens_light) or None,
        )

    def ray_shoot(
        self, x: Float[ArrayLike, "*points"], y: Float[ArrayLike, "*points"]
    ) -> tuple[Float[Array, "*points"], Float[Array, "*points"]]:
        """Source-plane positions (beta_x, beta_y) = theta - alpha(theta) of image-plane
        positions (x, y), all in arcsec."""
        alpha_x, alpha_y = deflection(self.mass, x, y)
        return x - alpha_x, y - alpha_y

    def lensed_source_brightness(
        self, x: Float[ArrayLike, "*points"], y: Float[ArrayLike, "*points"]
    ) -> Float[Array, "*points"]:
        """Surface brightness (flux per arcsec^2) of the lensed source at image-plane (x, y)."""
        beta_x, beta_y = self.ray_shoot(x, y)
        return sum(profile.surface_brightness(beta_x, beta_y) for profile in self.source)

    def lens_light_brightness(
        self, x: Float[ArrayLike, "*points"], y: Float[ArrayLike, "*points"]
    ) -> Float[Array, "*points"]:
        """Surface brightness (flux per arcsec^2) of the lens's own light at (x, y)."""
        total = jnp.zeros(jnp.broadcast_shapes(jnp.shape(x), jnp.shape(y)))
        return total + sum(profile.surface_brightness(x, y) for profile in self.lens_light)
