"""Cubic Hermite interpolation, shared by the tabulated special functions."""

import jax.numpy as jnp


def cubic_hermite(t, value_0, value_1, slope_0, slope_1):
    """The cubic through (0, value_0) and (1, value_1) with these slopes, at t in [0, 1].

    Slopes are derivatives with respect to t (scale them by the node spacing).
    """
    t2, t3 = t * t, t * t * t
    return (
        (2 * t3 - 3 * t2 + 1) * value_0
        + (t3 - 2 * t2 + t) * slope_0
        + (-2 * t3 + 3 * t2) * value_1
        + (t3 - t2) * slope_1
    )


def hermite_lookup(values, slopes, index, t, step):
    """A table's cubic Hermite interpolant at node `index` + `t` (t in [0, 1]).

    `slopes` are derivatives per unit of the table's variable, whose node spacing is
    `step`. Values and slopes are gathered from one array: XLA on the CPU gathers several
    times faster from one array than from two that were just computed.
    """
    size = values.shape[-1]
    both = jnp.concatenate([values, slopes * step], axis=-1)
    return cubic_hermite(
        t, both[index], both[index + 1], both[size + index], both[size + index + 1]
    )
