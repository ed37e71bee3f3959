"""The `jaxgal` command.

    jaxgal gallery [--out out/gallery.png]

renders a gallery of galaxies drawn across the supported range (n from 0.3 to 8, q from
0.05 to 1, r_eff from a tenth of a pixel to most of the stamp) in a KiDS-like setting
(0.2 arcsec pixels, Moffat seeing) and an HST-like one (0.05 arcsec pixels, a
pixelised PSF), and writes it as a PNG. Later issues add fitting commands.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxgal

SETTINGS = {
    'KiDS-like: 0.2"/px, Moffat FWHM 0.7"': dict(pixel_scale=0.2, side=64),
    'HST-like: 0.05"/px, pixelised PSF': dict(pixel_scale=0.05, side=64),
}
COLUMNS = [  # (n, q, r_eff in pixels)
    (0.3, 0.8, 6.0),
    (0.5, 0.3, 4.0),
    (1.0, 0.05, 12.0),
    (1.0, 0.6, 20.0),
    (2.5, 0.5, 2.0),
    (4.0, 0.8, 0.1),
    (4.0, 0.3, 8.0),
    (6.2, 0.9, 3.0),
    (8.0, 0.6, 1.0),
    (8.0, 1.0, 64.0),
]


def hst_like_psf(pixel_scale):
    """A pixelised PSF: an Airy-like core with wings, drawn on 25 x 25 pixels (sum 1)."""
    x = (np.arange(25) - 12) * pixel_scale
    r2 = x[None, :] ** 2 + x[:, None] ** 2
    kernel = np.exp(-0.5 * r2 / 0.045**2) + 0.02 * (1 + r2 / 0.15**2) ** -2.0
    return kernel / kernel.sum()


def render_gallery():
    rows = {}
    for name, setting in SETTINGS.items():
        scale, side = setting["pixel_scale"], setting["side"]
        grid = jaxgal.PixelGrid((side, side), scale)
        if scale == 0.2:
            psf = jaxgal.Moffat(0.7, 3.5)
        else:
            psf = jaxgal.PixelPSF(hst_like_psf(scale))
        n, q, r_eff = (jnp.asarray(column) for column in zip(*COLUMNS, strict=True))
        count = len(COLUMNS)
        galaxies = jaxgal.Sersic(
            jnp.full(count, 1000.0),
            r_eff * scale,
            n,
            q,
            jnp.linspace(0.0, 160.0, count),
            jnp.linspace(-0.4, 0.4, count) * scale,
            jnp.linspace(0.3, -0.3, count) * scale,
        )
        draw = jax.jit(
            jax.vmap(lambda galaxy, grid=grid, psf=psf: jaxgal.render(galaxy, grid, psf))
        )
        rows[name] = np.asarray(draw(galaxies))
    return rows


def write_gallery(rows, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        len(rows), len(COLUMNS), figsize=(1.6 * len(COLUMNS), 1.9 * len(rows)), squeeze=False
    )
    for row, (name, images) in enumerate(rows.items()):
        for column, image in enumerate(images):
            axis = axes[row, column]
            axis.imshow(np.arcsinh(image / (1e-3 * image.max())), origin="lower", cmap="magma")
            axis.set_xticks([])
            axis.set_yticks([])
            n, q, r_eff = COLUMNS[column]
            axis.set_title(f"n={n} q={q}\nr_eff={r_eff}px", fontsize=7)
        axes[row, 0].set_ylabel(name, fontsize=7)
    figure.suptitle("jaxgal: PSF-convolved, pixel-integrated Sersic galaxies (asinh stretch)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    # written atomically: a killed run leaves the old file or none, never half of one
    handle, temporary = tempfile.mkstemp(suffix=".png", dir=path.parent)
    os.close(handle)
    figure.savefig(temporary, dpi=120)
    os.replace(temporary, path)
    plt.close(figure)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="jaxgal", description="jaxgal command line")
    commands = parser.add_subparsers(dest="command", required=True)
    gallery = commands.add_parser("gallery", help="render a gallery of galaxies to a PNG")
    gallery.add_argument("--out", type=Path, default=Path("out/gallery.png"))
    args = parser.parse_args(argv)
    if args.command == "gallery":
        rows = render_gallery()
        write_gallery(rows, args.out)
        total = sum(len(images) for images in rows.values())
        print(f"gallery of {total} galaxies written to {args.out}")


if __name__ == "__main__":
    main()
