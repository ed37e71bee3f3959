"""GaLNet-1 (cutout -> Sersic parameters) and GaLNet-2 (cutout + local PSF -> parameters),
in Flax NNX, after Li, Napolitano et al. (2022, ApJ 929, 152).

As in the paper, a stack of 3x3 convolutions and max-pooling reads the galaxy, and GaLNet-2
reads the PSF stamp through its own, smaller convolutional branch whose features join the
galaxy's before the dense layers. Different from the paper: every output is a Gaussian (a
mean and a standard deviation per scaled target, trained by its negative log-likelihood),
so each prediction carries an uncertainty; and the cutout enters as
asinh(image / sky_sigma) / 4, sky_sigma the preset's reference sky noise, which keeps the
faint outskirts and the bright cores of a 5-magnitude range within a few units.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgal.networks.labels import TARGETS
from jaxgal.simulate.presets import SurveyPreset

SIGMA_FLOOR = 1e-3  # in scaled target units: 1e-3 of a prior's half-range
PSF_INPUT_SCALE = 20.0  # a stamp summing to 1 has a peak of ~0.01-0.2; this brings it to ~1


def scale_images(images, reference_sky_sigma):
    """The network's view of cutouts in counts: asinh(image / reference_sky_sigma) / 4."""
    return jnp.arcsinh(images / reference_sky_sigma) / 4.0


class ConvTower(nnx.Module):
    """3x3 convolutions (ReLU), each followed by 2x2 max-pooling, then flattened."""

    def __init__(self, widths: tuple[int, ...], *, rngs: nnx.Rngs):
        channels = (1, *widths)
        self.convs = nnx.List(
            [nnx.Conv(a, b, (3, 3), rngs=rngs) for a, b in zip(channels[:-1], channels[1:])]
        )

    def __call__(self, x):
        for conv in self.convs:
            x = nnx.max_pool(jax.nn.relu(conv(x)), (2, 2), strides=(2, 2))
        return x.reshape(x.shape[0], -1)


def _flat_size(shape: tuple[int, int], depth: int, width: int) -> int:
    ny, nx = shape
    for _ in range(depth):
        ny, nx = ny // 2, nx // 2
    return ny * nx * width


class GaLNet(nnx.Module):
    """GaLNet-2 (`use_psf=True`) or GaLNet-1 (`use_psf=False`).

    Built for one `SurveyPreset`: `__call__(images, psf_images)` takes cutouts of the
    preset's shape, (batch, ny, nx), in counts at the preset's zero point, and PSF stamps
    (batch, psf_size, psf_size) summing to 1 (ignored by GaLNet-1), and returns
    (mean, sigma), each (batch, 8), in the scaled target space of `jaxgal.networks.labels`.
    """

    def __init__(
        self,
        preset: SurveyPreset,
        *,
        use_psf: bool = True,
        widths: tuple[int, ...] = (16, 32, 64, 128),
        psf_widths: tuple[int, ...] = (16, 32),
        hidden: int = 256,
        rngs: nnx.Rngs,
    ):
        self.preset = preset
        self.use_psf = use_psf
        # per-target factors on the predicted sigma, fitted after training on fresh
        # simulations (`jaxgal.networks.calibrate`); static, not trained
        self.sigma_scale = (1.0,) * len(TARGETS)
        self.galaxy = ConvTower(widths, rngs=rngs)
        features = _flat_size(preset.shape, len(widths), widths[-1])
        if use_psf:
            self.psf = ConvTower(psf_widths, rngs=rngs)
            self.psf_dense = nnx.Linear(
                _flat_size((preset.psf_size,) * 2, len(psf_widths), psf_widths[-1]), 64, rngs=rngs
            )
            features += 64
        self.dense = nnx.Linear(features, hidden, rngs=rngs)
        self.dense2 = nnx.Linear(hidden, hidden // 2, rngs=rngs)
        self.head = nnx.Linear(hidden // 2, 2 * len(TARGETS), rngs=rngs)

    @classmethod
    def pretrained(cls, preset: str = "kids", network: str = "galnet2") -> GaLNet:
        """The shipped GaLNet for `preset` ("galnet2": cutout + PSF, or "galnet1")."""
        from jaxgal.networks.pretrained import pretrained

        return pretrained(preset, network)

    def predict(self, images, psf_images=None, *, zero_point=None, batch_size: int = 512):
        """Sersic parameters with `*_err` uncertainties for cutouts in counts: see
        `jaxgal.networks.pretrained.predict`."""
        from jaxgal.networks.pretrained import predict

        return predict(self, images, psf_images, zero_point=zero_point, batch_size=batch_size)

    def __call__(self, images, psf_images=None):
        images = scale_images(images, self.preset.reference_sky_sigma)
        features = self.galaxy(images[..., None])
        if self.use_psf:
            if psf_images is None:
                raise ValueError("GaLNet-2 needs psf_images")
            psf_features = jax.nn.relu(
                self.psf_dense(self.psf(PSF_INPUT_SCALE * psf_images[..., None]))
            )
            features = jnp.concatenate([features, psf_features], axis=-1)
        hidden = jax.nn.relu(self.dense2(jax.nn.relu(self.dense(features))))
        out = self.head(hidden)
        mean, raw_sigma = jnp.split(out, 2, axis=-1)
        sigma = jax.nn.softplus(raw_sigma) + SIGMA_FLOOR
        return mean, sigma * jnp.asarray(self.sigma_scale, sigma.dtype)


def gaussian_nll_per_target(mean, sigma, targets):
    """Per target, the mean over galaxies of the Gaussian negative log-likelihood
    (without the constant 0.5 ln 2 pi)."""
    z = (targets - mean) / sigma
    return jnp.mean(0.5 * z * z + jnp.log(sigma), axis=0)


def gaussian_nll(mean, sigma, targets):
    """Mean over galaxies and targets of the Gaussian negative log-likelihood."""
    return jnp.mean(gaussian_nll_per_target(mean, sigma, targets))
