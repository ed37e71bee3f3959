"""n > 6.2 with a PSF, where GalSim stops: against an independent scipy integral.

A pixel value is integral S(y) K(x_p - y) dy with K the Gaussian PSF convolved with the
pixel, a product of error-function differences. The reference integrates it in polar
coordinates of the profile's circularised frame (so the cusp is the origin): adaptive
quadrature in log R, a 400-point trapezoid rule in angle (periodic and smooth).
"""

import numpy as np
import pytest
import scipy.integrate as integrate
import scipy.special as special

import jaxgal


def gaussian_pixel_kernel(dx, dy, sigma, pixel):
    def axis(d):
        root = np.sqrt(2.0) * sigma
        return 0.5 * (special.erf((d + pixel / 2) / root) - special.erf((d - pixel / 2) / root))

    return axis(dx) * axis(dy)


def reference_pixel(flux, r_eff, n, q, pa, x0, y0, x_pixel, y_pixel, sigma, pixel):
    b = special.gammaincinv(2 * n, 0.5)
    central = flux * b ** (2 * n) / (2 * np.pi * n * r_eff**2 * special.gamma(2 * n))
    angle = 2 * np.pi * np.arange(400) / 400
    cos, sin = np.cos(np.deg2rad(pa)), np.sin(np.deg2rad(pa))

    def ring(log_r):
        r = np.exp(log_r)
        major, minor = r * np.cos(angle) / np.sqrt(q), r * np.sin(angle) * np.sqrt(q)
        x = x0 + major * cos - minor * sin
        y = y0 + major * sin + minor * cos
        kernel = gaussian_pixel_kernel(x_pixel - x, y_pixel - y, sigma, pixel).mean() * 2 * np.pi
        return central * np.exp(-b * (r / r_eff) ** (1 / n)) * r * r * kernel

    edges = np.log(r_eff) + np.array([-60.0, -30.0, -15.0, -8.0, -4.0, -2.0, 0.0, 2.0, 5.0, 9.0])
    return sum(
        integrate.quad(ring, a, c, limit=200, epsrel=1e-10)[0] for a, c in zip(edges, edges[1:])
    )


@pytest.mark.parametrize(
    "case",
    [
        (1.0, 0.02, 8.0, 0.05, 30.0, 0.0, 0.0),
        (1.0, 0.02, 8.0, 1.0, 0.0, 0.013, -0.027),
        (1.0, 0.5, 7.0, 0.4, 120.0, 0.05, 0.03),
    ],
)
def test_n_above_galsim_range_with_gaussian_psf(case):
    pixel, fwhm, side = 0.2, 0.5, 25
    sigma = fwhm / (2 * np.sqrt(2 * np.log(2)))
    grid = jaxgal.PixelGrid((side, side), pixel)
    image = np.asarray(jaxgal.render(jaxgal.Sersic(*case), grid, jaxgal.Gaussian(fwhm)))
    xs, ys = np.asarray(grid.x_centres()), np.asarray(grid.y_centres())
    centre = side // 2
    errors = []
    for i in range(centre - 2, centre + 3):
        for j in range(centre - 2, centre + 3):
            reference = reference_pixel(*case, xs[j], ys[i], sigma, pixel)
            errors.append(abs(image[i, j] - reference))
    assert max(errors) <= 1e-3 * image.max()
