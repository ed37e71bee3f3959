"""jaxgal: differentiable physics for galaxy structure and strong lensing, in JAX."""

from jaxgal.grid import PixelGrid
from jaxgal.lensing import SIE, ExternalShear, LensSystem, critical_curves, image_positions
from jaxgal.light.psf import Gaussian, Moffat, PixelPSF
from jaxgal.light.sersic import Sersic, sersic_bn
from jaxgal.magnitudes import flux_to_magnitude, magnitude_to_flux
from jaxgal.render import render, render_lens
from jaxgal.render.psf_image import draw_psf


def __getattr__(name):
    # the networks and the fitting pull in Flax and numpyro: import them when asked for
    if name == "GaLNet":
        from jaxgal.networks import GaLNet

        return GaLNet
    if name == "fit":
        from jaxgal.fitting.api import fit

        return fit
    if name in ("BulgeDisc", "SersicModel"):
        from jaxgal.fitting import models

        return getattr(models, name)
    raise AttributeError(f"module 'jaxgal' has no attribute {name!r}")


__all__ = [
    "BulgeDisc",
    "ExternalShear",
    "GaLNet",
    "LensSystem",
    "Gaussian",
    "Moffat",
    "PixelGrid",
    "PixelPSF",
    "SIE",
    "Sersic",
    "SersicModel",
    "critical_curves",
    "draw_psf",
    "fit",
    "flux_to_magnitude",
    "image_positions",
    "magnitude_to_flux",
    "render",
    "render_lens",
    "sersic_bn",
]
