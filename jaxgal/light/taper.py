"""A smooth step, used to split profiles and to blend quadratures without kinks."""

import jax.numpy as jnp


def smooth_taper(t):
    """1 for t <= 0, 0 for t >= 1, C-infinity in between (and finite gradients everywhere)."""
    inside = (t > 0) & (t < 1)
    safe = jnp.where(inside, t, 0.5)
    rising = jnp.exp(-1.0 / safe)
    falling = jnp.exp(-1.0 / (1.0 - safe))
    return jnp.where(t <= 0, 1.0, jnp.where(t >= 1, 0.0, falling / (falling + rising)))
