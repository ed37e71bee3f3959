"""Levenberg-Marquardt for small dense least-squares problems (one galaxy's parameters),
jit- and vmap-able, with one evaluation of the residuals and their Jacobian an iteration."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array


class _Search(NamedTuple):
    """The solver's state: the best point so far (u, its residuals, Jacobian and cost
    chi^2 / 2), the next trial point, the damping, the start's standard errors, the number
    of evaluations, and whether it has converged or stopped."""

    u: Array
    residuals: Array
    jacobian: Array
    cost: Array
    trial: Array
    damping: Array
    sigma: Array
    steps: Array
    converged: Array
    done: Array


def levenberg_marquardt(evaluate, start, *, rtol, atol, max_steps):
    """Minimise |r(u)|^2 / 2 from `start` by Levenberg-Marquardt with Marquardt's scaling.

    `evaluate(u) -> (r, J)`: residuals and their Jacobian (one forward-mode pass). Each
    iteration evaluates one trial point, u + delta with (J^T J + lambda diag(J^T J)) delta
    = -J^T r at the best point so far: a lower cost is accepted (lambda / 3), a higher or
    non-finite one rejected (lambda x 4). It stops, converged, when a step moves every
    coordinate by less than `atol` of its standard error at the start (1 / sqrt(diag J^T J))
    and changes the cost by less than `atol + rtol` of itself, or when the Gauss-Newton step
    from the best point is shorter than `atol` standard errors in the metric J^T J (it
    predicts a decrease of the cost below atol^2 / 2, times the reduced chi^2 where that
    exceeds 1): the minimum is that near, with no trial evaluated to confirm it; or, not
    converged, after
    `max_steps` evaluations or when the start itself is not finite. Returns the final state
    (`u`, `residuals`, `jacobian`, `cost` of the best point; `steps`; `converged`).

    One evaluation per iteration, traced once (in the loop's body): the start is the first
    trial. Written here rather than taken from optimistix, whose LM traces the model ~4
    times (value, linearisation, transpose), 5x the compile time on a CPU, for the same
    iterations.
    """
    dtype = start.dtype
    size = start.shape[-1]
    r_shape, j_shape = jax.eval_shape(evaluate, start)
    state = _Search(
        u=start,
        residuals=jnp.zeros(r_shape.shape, dtype),
        jacobian=jnp.zeros(j_shape.shape, dtype),
        cost=jnp.asarray(jnp.inf, dtype),
        trial=start,
        damping=jnp.asarray(1e-3, dtype),
        sigma=jnp.ones(size, dtype),
        steps=jnp.asarray(0),
        converged=jnp.asarray(False),
        done=jnp.asarray(False),
    )

    def body(state: _Search) -> _Search:
        r, jacobian = evaluate(state.trial)
        cost = 0.5 * jnp.sum(r * r)
        finite = jnp.isfinite(cost) & jnp.all(jnp.isfinite(jacobian))
        first = state.steps == 0
        accept = finite & (cost < state.cost)
        curvature = jnp.sum(jacobian * jacobian, axis=0)
        usable = finite & (curvature > 0)
        start_sigma = jnp.where(usable, jax.lax.rsqrt(jnp.where(usable, curvature, 1.0)), 1.0)
        sigma = jnp.where(first, start_sigma, state.sigma)
        moved = jnp.max(jnp.abs(state.trial - state.u) / sigma)
        change = jnp.abs(state.cost - cost)
        small = ~first & finite & (moved < atol) & (change < atol + rtol * cost)
        best = jax.tree.map(
            lambda new, old: jnp.where(accept, new, old),
            (state.trial, r, jacobian, cost),
            (state.u, state.residuals, state.jacobian, state.cost),
        )
        u, best_r, best_jacobian, best_cost = best
        damping = jnp.where(accept, jnp.maximum(state.damping / 3.0, 1e-9), state.damping * 4.0)
        normal = best_jacobian.T @ best_jacobian
        diagonal = jnp.diagonal(normal)
        diagonal = jnp.maximum(diagonal, 1e-12 * jnp.max(diagonal) + jnp.finfo(dtype).tiny)
        gradient = best_jacobian.T @ best_r
        delta = jnp.linalg.solve(normal + damping * jnp.diag(diagonal), -gradient)
        # At the best point, the undamped (Gauss-Newton) step and the decrease of the cost it
        # predicts, d^2 / 2 with d the step's length in standard errors (the metric J^T J,
        # correlations included; scaled by the reduced chi^2 where the model fits worse than
        # the noise), say how far the minimum still is: when d < atol the search stops there,
        # without evaluating a trial it would not need. (Per coordinate, in conditional
        # errors, a low-S/N galaxy's correlated parameters crept on for tens of steps of a
        # few hundredths of an error each, or stalled where float32 no longer resolves the
        # cost.)
        newton = jnp.linalg.solve(normal + 1e-9 * jnp.diag(diagonal), -gradient)
        predicted = -0.5 * jnp.dot(gradient, newton)
        reduced = 2.0 * best_cost / max(best_r.shape[-1] - size, 1)
        near = jnp.isfinite(best_cost) & (predicted < 0.5 * atol * atol * jnp.maximum(reduced, 1.0))
        steps = state.steps + 1
        converged = small | near
        done = converged | (steps >= max_steps) | (first & ~finite)
        return _Search(
            u, best_r, best_jacobian, best_cost, u + delta, damping, sigma, steps, converged, done
        )

    return jax.lax.while_loop(lambda state: ~state.done, body, state)
