"""Shared references for the tests: independent of jaxgal (scipy, GalSim)."""

import os
import shutil
import tempfile

import jax
import numpy as np
import pytest
import scipy.integrate as integrate
import scipy.special as special

jax.config.update("jax_enable_x64", True)
# The suite's test workers (pytest-xdist, children of the controller) share one compilation
# cache for this run, so a program compiled by one (refinement, rendering of a shape) is
# loaded by the other; the controller removes it at the end.
_RUN = os.getppid() if "PYTEST_XDIST_WORKER" in os.environ else os.getpid()
_CACHE = os.path.join(tempfile.gettempdir(), f"jaxgal-tests-{_RUN}")
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
# and the tests' subprocesses (a training run killed and resumed, the command line) too
os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "1.0"


def pytest_sessionfinish(session):
    if "PYTEST_XDIST_WORKER" not in os.environ:
        shutil.rmtree(_CACHE, ignore_errors=True)


def sersic_surface_brightness(flux, r_eff, n, q, pa, x0, y0):
    """I(x, y) of the conventions' Sersic, written from the formulas with scipy."""
    b = special.gammaincinv(2 * n, 0.5)
    central = flux * b ** (2 * n) / (2 * np.pi * n * r_eff**2 * special.gamma(2 * n))
    cos, sin = np.cos(np.deg2rad(pa)), np.sin(np.deg2rad(pa))

    def brightness(y, x):
        dx, dy = x - x0, y - y0
        major = dx * cos + dy * sin
        minor = -dx * sin + dy * cos
        radius = np.sqrt(q * major * major + minor * minor / q)
        return central * np.exp(-b * (radius / r_eff) ** (1.0 / n))

    return brightness


def pixel_integral(brightness, x_lo, x_hi, y_lo, y_hi, x0, y0, rtol=1e-10):
    """Adaptive quadrature of a pixel, split at the profile's centre so the cusp is a corner."""
    xs = [x_lo, x0, x_hi] if x_lo < x0 < x_hi else [x_lo, x_hi]
    ys = [y_lo, y0, y_hi] if y_lo < y0 < y_hi else [y_lo, y_hi]
    total = 0.0
    for a, b in zip(xs[:-1], xs[1:], strict=True):
        for c, d in zip(ys[:-1], ys[1:], strict=True):
            total += integrate.dblquad(brightness, a, b, c, d, epsabs=0, epsrel=rtol)[0]
    return total


@pytest.fixture
def rng():
    return np.random.default_rng(20261126)
