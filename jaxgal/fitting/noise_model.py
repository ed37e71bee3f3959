"""Per-pixel noise for fitting: a sigma map, a weight map, or the GALFIT/Imfit model.

Exactly one source is used, in this order: `sigma` (counts per pixel), `weight` (1 /
sigma^2; zero weight masks a pixel), or, when neither is given, the noise computed from
the image itself as GALFIT and Imfit do: in electrons, the variance is the source and the
subtracted sky (Poisson) plus the read noise, so in counts

    sigma^2 = (image + sky) / gain + n_combined * read_noise^2 / gain^2,

with `gain` in electrons per count, `read_noise` in electrons and `sky` the sky level
(counts per pixel) that was subtracted from the image. Negative variances (deep noise
dips below a zero sky) are floored at the read-noise term.
"""

from __future__ import annotations

import jax.numpy as jnp


def noise_sigma(
    images,
    *,
    sigma=None,
    weight=None,
    gain=None,
    read_noise: float = 0.0,
    sky: float = 0.0,
    n_combined: int = 1,
):
    """The per-pixel sigma (counts) of `images`, with the images' shape; 0 or inf marks
    pixels with no information (weight 0), which the fit leaves out."""
    images = jnp.asarray(images)
    if sigma is not None and weight is not None:
        raise ValueError("give a sigma map or a weight map, not both")
    if sigma is not None:
        return jnp.broadcast_to(jnp.asarray(sigma, images.dtype), images.shape)
    if weight is not None:
        weight = jnp.broadcast_to(jnp.asarray(weight, images.dtype), images.shape)
        return jnp.where(weight > 0, 1.0 / jnp.sqrt(jnp.where(weight > 0, weight, 1.0)), jnp.inf)
    if gain is None or not gain > 0:
        raise ValueError(
            "without a sigma or weight map the noise is computed from the image: give gain "
            f"(electrons per count, > 0), read_noise and the subtracted sky; got gain={gain}"
        )
    read_term = n_combined * read_noise**2 / gain**2
    variance = (images + sky) / gain + read_term
    floor = read_term if read_term > 0 else 1.0 / gain
    return jnp.sqrt(jnp.maximum(variance, floor))


def usable_pixels(images, sigma, mask=None):
    """(usable, images, inverse_sigma) for the likelihood: a pixel counts where the image
    and sigma are finite, sigma > 0 and `mask` (if given) is True; elsewhere the image is
    set to 0 and 1 / sigma to 0, so it drops out of chi^2 with finite gradients."""
    usable = jnp.isfinite(images) & jnp.isfinite(sigma) & (sigma > 0)
    if mask is not None:
        usable = usable & jnp.asarray(mask, bool)
    inverse_sigma = jnp.where(usable, 1.0 / jnp.where(usable, sigma, 1.0), 0.0)
    return usable, jnp.where(usable, images, 0.0), inverse_sigma
