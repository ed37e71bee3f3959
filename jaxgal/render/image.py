"""`render`: the pixel image of one or more light profiles, with or without a PSF."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from jaxgal.grid import PixelGrid
from jaxgal.lensing.system import LensSystem
from jaxgal.light.psf import Gaussian, Moffat, PixelPSF
from jaxgal.light.sersic import Sersic
from jaxgal.light.sersic_pixels import exact_cell_fluxes
from jaxgal.render.convolved import render_convolved
from jaxgal.render.lensed import render_lensed_source

PSF = Gaussian | Moffat | PixelPSF


def render(
    model: Sersic | Sequence[Sersic] | LensSystem,
    grid: PixelGrid,
    psf: PSF | None = None,
    *,
    oversample: int = 2,
    margin: int = 20,
    bandwidth: float | None = None,
) -> Float[Array, "ny nx"]:
    """The pixel-integrated image of `model` on `grid`, convolved with `psf` if given.

    Pixel values are the flux in each pixel (GalSim's `drawImage(method='auto')`): without
    a PSF, exact integrals of the profile over each pixel (`jaxgal.light.sersic_pixels`);
    with one, the convolution of `jaxgal.render.convolved`. `model` is one profile or a
    sequence of profiles whose light adds. One galaxy at a time: use `jax.vmap` for a
    batch (a Sersic whose leaves have a leading axis, and a PSF likewise, or shared).

    `oversample` (the halo lattice's cells per pixel side), `margin` (pixels beyond the
    stamp that can scatter light into it) and `bandwidth` (the largest |k| of the core's
    spectrum, in units of pi / pixel: 2.5 for the analytic PSFs, 6.5 for a `PixelPSF`,
    whose Quintic interpolant has side lobes) are static; the defaults meet 1e-3 of the
    peak pixel for PSFs at least 2 pixels wide and Moffat wings with beta >= 2.5, also for
    galaxies as large as the stamp (see `jaxgal.render.convolved`).

    A `LensSystem` gives its lens light plus its lensed source (`render_lens` gives the two
    apart); its source is integrated as `jaxgal.render.lensed` says.

    Parameters out of range raise an error naming the parameter, inside `jit` too.
    """
    if isinstance(model, LensSystem):
        lens_light, lensed_source = render_lens(
            model, grid, psf, oversample=oversample, margin=margin, bandwidth=bandwidth
        )
        return lens_light + lensed_source
    profiles = [model] if isinstance(model, Sersic) else list(model)
    if not profiles:
        raise ValueError("render needs at least one profile")
    for profile in profiles:
        if not isinstance(profile, Sersic):
            raise TypeError(f"render takes Sersic profiles, got {type(profile).__name__}")
        if jnp.ndim(profile.flux) != 0:
            raise ValueError(
                "render draws one galaxy; for a batch use jax.vmap(render, in_axes=...)"
            )
    if bandwidth is None:
        bandwidth = 6.5 if isinstance(psf, PixelPSF) else 2.5
    if oversample < 1 or margin < 0 or not bandwidth >= 1.0:
        raise ValueError(
            "oversample must be >= 1, margin >= 0 and bandwidth >= 1, "
            f"got {oversample}, {margin}, {bandwidth}"
        )
    # checked here (a concrete value out of range raises ValueError at once), drawn by one
    # compiled program per configuration: called eagerly, as in a notebook, op-by-op
    # dispatch would cost seconds a call
    grid = grid.checked()
    psf = None if psf is None else psf.checked()
    profiles = tuple(profile.checked() for profile in profiles)
    return _render_profiles(
        profiles, grid, psf, oversample=oversample, margin=margin, bandwidth=float(bandwidth)
    )


@partial(jax.jit, static_argnames=("oversample", "margin", "bandwidth"))
def _render_profiles(profiles, grid, psf, *, oversample, margin, bandwidth):
    image = 0.0
    for profile in profiles:
        if psf is None:
            image = image + exact_cell_fluxes(profile, grid.x_edges(), grid.y_edges())
        else:
            image = image + render_convolved(
                profile, grid, psf, oversample=oversample, margin=margin, bandwidth=bandwidth
            )
    return image


def render_lens(
    system: LensSystem,
    grid: PixelGrid,
    psf: PSF | None = None,
    *,
    oversample: int = 2,
    margin: int = 20,
    bandwidth: float | None = None,
    source_subsamples: int = 2,
    source_refinement: tuple[tuple[int, int], ...] = ((1024, 16), (16, 128)),
) -> tuple[Float[Array, "ny nx"], Float[Array, "ny nx"]]:
    """(lens light, lensed source): the two parts of the image of `system`, each
    pixel-integrated and convolved with `psf` if given. The lens light is drawn as `render`
    draws galaxies (zeros if the system has none); the lensed source by ray shooting on a
    lattice of `oversample` cells per pixel side, each cell's mean brightness from
    `source_subsamples`^2 points, refined by `source_refinement` where the light varies
    (`jaxgal.render.lensed`)."""
    if not isinstance(system, LensSystem):
        raise TypeError(f"render_lens takes a LensSystem, got {type(system).__name__}")
    system = system.checked()
    if system.lens_light:
        lens_light = render(
            list(system.lens_light),
            grid,
            psf,
            oversample=oversample,
            margin=margin,
            bandwidth=bandwidth,
        )
    else:
        lens_light = jnp.zeros(grid.shape, grid.pixel_scale.dtype)
    psf = None if psf is None else psf.checked()
    lensed_source = _render_lensed_source(
        system,
        grid.checked(),
        psf,
        oversample=oversample,
        margin=margin,
        subsamples=source_subsamples,
        refinement=tuple(tuple(int(v) for v in level) for level in source_refinement),
    )
    return lens_light, lensed_source


# one compiled program per configuration, as `render`
_render_lensed_source = jax.jit(
    render_lensed_source, static_argnames=("oversample", "margin", "subsamples", "refinement")
)
