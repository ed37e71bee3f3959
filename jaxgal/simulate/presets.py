"""Survey presets: pixel scale, cutout size, zero point, PSF distribution, sky noise, gain.

A preset is what the simulator needs to draw cutouts that look like a survey's: the
galaxy prior, the distribution of per-galaxy Moffat PSFs, the range of sky noise (as a
range of 5-sigma limiting magnitudes, since depth is how surveys quote their noise) and
the gain that sets the source's Poisson noise. Figures are survey-averaged and rounded;
each preset's docstring entry names its source. Change any field with
`dataclasses.replace(preset, ...)`.

Noise conventions: the sky noise per pixel follows from a 5-sigma limiting magnitude
`depth` measured in an area `depth_area` (arcsec^2): sigma_pixel = F_lim / 5 /
sqrt(depth_area / pixel_scale^2), F_lim = 10^(-0.4 (depth - zero_point)). For a point-source
depth the area is the PSF's noise-equivalent area, 2.266 FWHM^2 for a Gaussian PSF (Ivezic
et al. 2019). `gain` is electrons per image count (exposure time x 10^(0.4 (ZP_e -
zero_point)), ZP_e the magnitude giving 1 electron per second): the source's Poisson
variance in counts^2 is counts / gain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp

from jaxgal.light.psf import MAX_PSF_SHEAR, Moffat
from jaxgal.simulate.priors import SersicPrior


@dataclass(frozen=True)
class MoffatPrior:
    """Per-galaxy Moffat PSFs: `fwhm` (arcsec) and `beta` uniform in their ranges, and a
    shear (g1, g2) uniform in the disc |g| <= `shear` (GalSim's reduced shear)."""

    fwhm: tuple[float, float] = (0.5, 1.1)
    beta: tuple[float, float] = (2.5, 4.5)
    shear: float = 0.05

    def __post_init__(self):
        for name in ("fwhm", "beta"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(
                    f"MoffatPrior {name} range must have 0 < low <= high, got {low, high}"
                )
        if self.beta[0] <= 1.1:
            raise ValueError(f"MoffatPrior beta must be > 1.1, got {self.beta}")
        if not 0 <= self.shear <= MAX_PSF_SHEAR:
            raise ValueError(f"MoffatPrior shear must be in [0, {MAX_PSF_SHEAR}], got {self.shear}")

    def sample(self, key, count: int) -> Moffat:
        """`count` PSFs, as one `Moffat` whose leaves have a leading axis."""
        keys = jax.random.split(key, 4)
        fwhm = jax.random.uniform(keys[0], (count,), minval=self.fwhm[0], maxval=self.fwhm[1])
        beta = jax.random.uniform(keys[1], (count,), minval=self.beta[0], maxval=self.beta[1])
        # uniform in the disc: radius ~ sqrt(uniform)
        radius = self.shear * jnp.sqrt(jax.random.uniform(keys[2], (count,)))
        angle = jax.random.uniform(keys[3], (count,), maxval=2.0 * jnp.pi)
        return Moffat(fwhm, beta, radius * jnp.cos(angle), radius * jnp.sin(angle))


@dataclass(frozen=True)
class SurveyPreset:
    """A survey's imaging, as the simulator and the networks see it.

    `depth` is a range of 5-sigma limiting magnitudes in `depth_area` arcsec^2; each
    simulated cutout draws its depth uniformly from it (the deep end is the survey's quoted
    depth, the shallow end covers shallower tiles and the noisier test sets networks are
    scored on). `psf_size` is the side of the PSF stamp handed to GaLNet-2.
    """

    name: str
    pixel_scale: float
    shape: tuple[int, int]
    zero_point: float
    depth: tuple[float, float]
    depth_area: float
    gain: float
    psf: MoffatPrior
    galaxy: SersicPrior = field(default_factory=SersicPrior)
    psf_size: int = 25

    def __post_init__(self):
        if not self.pixel_scale > 0:
            raise ValueError(f"SurveyPreset pixel_scale must be > 0, got {self.pixel_scale}")
        if len(self.shape) != 2 or min(self.shape) < 8:
            raise ValueError(f"SurveyPreset shape must be (ny, nx), sides >= 8, got {self.shape}")
        if self.psf_size % 2 == 0 or self.psf_size < 3:
            raise ValueError(f"SurveyPreset psf_size must be odd and >= 3, got {self.psf_size}")
        if not self.depth[0] <= self.depth[1]:
            raise ValueError(f"SurveyPreset depth range must be (shallow, deep), got {self.depth}")
        if not (self.depth_area > 0 and self.gain > 0):
            raise ValueError(
                f"SurveyPreset depth_area and gain must be > 0, got {self.depth_area}, {self.gain}"
            )

    def sky_sigma(self, depth):
        """Sky noise per pixel (image counts) for a 5-sigma limiting magnitude `depth`."""
        limiting_flux = 10.0 ** (-0.4 * (jnp.asarray(depth) - self.zero_point))
        pixels_in_area = self.depth_area / self.pixel_scale**2
        return limiting_flux / 5.0 / math.sqrt(pixels_in_area)

    @property
    def reference_sky_sigma(self) -> float:
        """The sky noise at the preset's quoted (deepest) depth: the networks' unit of flux."""
        limiting_flux = 10.0 ** (-0.4 * (self.depth[1] - self.zero_point))
        return limiting_flux / 5.0 / math.sqrt(self.depth_area / self.pixel_scale**2)


def _gain(exposure_time, zero_point_electrons, zero_point):
    return exposure_time * 10.0 ** (0.4 * (zero_point_electrons - zero_point))


KIDS = SurveyPreset(
    name="kids",
    pixel_scale=0.2,
    shape=(64, 64),
    zero_point=30.0,
    depth=(23.5, 25.0),
    depth_area=math.pi * 1.0**2,
    gain=_gain(1800.0, 25.0, 30.0),
    psf=MoffatPrior(fwhm=(0.5, 1.1), beta=(2.5, 4.5), shear=0.05),
)
"""KiDS DR4 r band (Kuijken et al. 2019, A&A 625, A2; de Jong et al. 2013): OmegaCAM
0.2 arcsec pixels, 64 x 64 cutouts as in GaLNet (Li et al. 2022), zero point 30 (the GaLNet
test set's), limiting magnitude 25.0 (5 sigma, 2 arcsec aperture; the shallow end, 23.5,
covers the GaLNet-style test set 1.2 mag shallower), 1800 s exposures (5 x 360 s) with
OmegaCAM's r-band ZP_e ~ 25.0, seeing FWHM 0.5-1.1 arcsec (r band is KiDS's best-seeing
band, median ~0.7)."""

HST_ACS = SurveyPreset(
    name="hst_acs",
    pixel_scale=0.05,
    shape=(64, 64),
    zero_point=25.94,
    depth=(26.5, 27.2),
    depth_area=2.266 * 0.1**2,
    gain=_gain(2028.0, 25.94, 25.94),
    psf=MoffatPrior(fwhm=(0.085, 0.12), beta=(2.5, 4.5), shear=0.03),
    galaxy=SersicPrior(magnitude=(19.0, 25.0), r_eff=(0.05, 1.0)),
)
"""HST ACS/WFC F814W as in COSMOS (Koekemoer et al. 2007, ApJS 172, 196; Scoville et al.
2007): 0.05 arcsec pixels, images in electrons per second (AB zero point 25.94, ACS
instrument handbook), one 2028 s orbit, 5-sigma point-source depth 27.2, PSF FWHM ~0.1
arcsec (a Moffat is an approximation of the diffraction-limited PSF)."""

CSST = SurveyPreset(
    name="csst",
    pixel_scale=0.074,
    shape=(64, 64),
    zero_point=25.9,
    depth=(25.5, 26.0),
    depth_area=2.266 * 0.15**2,
    gain=_gain(300.0, 25.9, 25.9),
    psf=MoffatPrior(fwhm=(0.12, 0.18), beta=(2.5, 4.5), shear=0.05),
    galaxy=SersicPrior(magnitude=(18.0, 24.0), r_eff=(0.074, 1.5)),
)
"""CSST survey camera, r band (Zhan 2011, Sci. Sin. Phys. Mech. Astron. 41, 1441; Zhan 2021,
Chin. Sci. Bull. 66, 1290): 0.074 arcsec pixels, 2 x 150 s exposures, 5-sigma point-source
depth ~26.0, PSF with 80% of the light within 0.15 arcsec (FWHM ~0.12-0.18), images in
electrons per second (ZP_e ~ 25.9 for the 2 m aperture, approximate)."""

EUCLID_VIS = SurveyPreset(
    name="euclid_vis",
    pixel_scale=0.1,
    shape=(64, 64),
    zero_point=23.9,
    depth=(25.7, 26.2),
    depth_area=2.266 * 0.17**2,
    gain=_gain(2264.0, 25.6, 23.9),
    psf=MoffatPrior(fwhm=(0.15, 0.2), beta=(2.5, 4.5), shear=0.05),
    galaxy=SersicPrior(magnitude=(18.0, 24.0), r_eff=(0.1, 2.0)),
)
"""Euclid VIS, wide survey (Euclid Collaboration: Mellier et al. 2024, arXiv:2405.13491;
Cropper et al. 2016): 0.1 arcsec pixels, images in microjansky (zero point 23.9, as the
MER mosaics), 4 x 566 s exposures, 5-sigma point-source depth 26.2, PSF FWHM ~0.16-0.18
arcsec, ZP_e ~ 25.6 (approximate)."""

LSST = SurveyPreset(
    name="lsst",
    pixel_scale=0.2,
    shape=(64, 64),
    zero_point=31.4,
    depth=(26.5, 27.5),
    depth_area=2.266 * 0.7**2,
    gain=_gain(184 * 30.0, 28.13, 31.4),
    psf=MoffatPrior(fwhm=(0.55, 1.0), beta=(2.5, 4.5), shear=0.05),
    galaxy=SersicPrior(magnitude=(18.0, 25.0), r_eff=(0.2, 4.0)),
)
"""Rubin LSST r band, ten-year coadd (Ivezic et al. 2019, ApJ 873, 111): 0.2 arcsec pixels,
images in nanojansky (zero point 31.4, the Rubin pipelines'), 184 visits of 30 s, ZP_e
28.13, 5-sigma point-source depth 27.5 (one visit: 24.7), delivered seeing FWHM 0.55-1.0
arcsec (median ~0.7)."""

PRESETS = {preset.name: preset for preset in (KIDS, HST_ACS, CSST, EUCLID_VIS, LSST)}


def get_preset(name: str) -> SurveyPreset:
    """The preset called `name` (one of `PRESETS`)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown survey preset {name!r}; known: {sorted(PRESETS)}") from None
