"""Magnitudes and fluxes with a zero point: mag = zero_point - 2.5 log10(flux)."""

from __future__ import annotations

import jax.numpy as jnp


def magnitude_to_flux(magnitude, zero_point):
    """Total flux (image units) of a source of this magnitude, for this zero point."""
    return jnp.power(10.0, -0.4 * (jnp.asarray(magnitude) - zero_point))


def flux_to_magnitude(flux, zero_point):
    """Magnitude of a source of total flux `flux` (> 0), for this zero point."""
    return zero_point - 2.5 * jnp.log10(jnp.asarray(flux))
