"""Levenberg-Marquardt against scipy's least_squares on small nonlinear problems, and its
flags: a start that is not finite, or too few steps, is never reported converged."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import least_squares

from jaxgal.fitting.least_squares import levenberg_marquardt

TIMES = np.linspace(0.0, 4.0, 40)
DATA = 3.0 * np.exp(-1.3 * TIMES) + 0.5 * np.sin(2.0 * TIMES + 0.3)
DATA = DATA + 0.01 * np.random.default_rng(2).standard_normal(TIMES.size)


def residuals(u):
    amplitude, rate, wave, frequency, phase = u[0], u[1], u[2], u[3], u[4]
    model = amplitude * jnp.exp(-rate * TIMES) + wave * jnp.sin(frequency * TIMES + phase)
    return model - DATA


def evaluate(u):
    jacobian, r = jax.jacfwd(lambda u: (residuals(u),) * 2, has_aux=True)(u)
    return r, jacobian


@pytest.mark.parametrize("start", [[1.0, 1.0, 1.0, 1.8, 0.0], [5.0, 0.5, 0.2, 2.2, 0.5]])
def test_minimum_matches_scipy(start):
    start = jnp.asarray(start)
    # atol: the minimum within 1e-10 standard errors (of unit noise), so the residuals are
    # within 1e-10 of scipy's
    solve = jax.jit(
        lambda u: levenberg_marquardt(evaluate, u, rtol=1e-10, atol=1e-10, max_steps=200)
    )
    result = solve(start)
    reference = least_squares(
        lambda u: np.asarray(residuals(jnp.asarray(u))), np.asarray(start), method="lm",
        xtol=1e-14, ftol=1e-14, gtol=1e-14,
    )  # fmt: skip
    assert bool(result.converged)
    np.testing.assert_allclose(np.asarray(result.u), reference.x, rtol=1e-7, atol=1e-9)
    assert float(2 * result.cost) == pytest.approx(float(np.sum(reference.fun**2)), rel=1e-9)
    np.testing.assert_allclose(np.asarray(result.residuals), reference.fun, atol=1e-9)


def test_flags_not_finite_starts_and_too_few_steps():
    solve = jax.jit(
        jax.vmap(lambda u: levenberg_marquardt(evaluate, u, rtol=1e-10, atol=1e-8, max_steps=3))
    )
    starts = jnp.array([[np.nan, 1.0, 1.0, 1.8, 0.0], [1.0, 1.0, 1.0, 1.8, 0.0]])
    result = solve(starts)
    assert result.converged.tolist() == [False, False]
    assert result.steps.tolist() == [1, 3]
