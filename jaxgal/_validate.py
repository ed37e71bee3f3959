"""Checks of parameter ranges, eager where values are concrete and inside jit otherwise.

A parameter that is a concrete array is checked when the Module is built and a
`ValueError` names it. A traced parameter (inside `jit`, `vmap` or `grad`) is checked
with `equinox.error_if`, which raises at run time, also under `jit`, with the same message.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


def is_traced(value) -> bool:
    return isinstance(value, jax.core.Tracer)


def all_concrete(module) -> bool:
    """Whether no leaf of `module` is traced (so its values can be checked eagerly)."""
    return not any(is_traced(leaf) for leaf in jax.tree_util.tree_leaves(module))


def as_float(value):
    """`value` as a JAX array of a floating dtype (integers become the default float)."""
    value = jnp.asarray(value)
    if not jnp.issubdtype(value.dtype, jnp.floating):
        value = value.astype(jnp.result_type(float))
    return value


def check_range(
    value,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
):
    """Return `value`, raising if any element is non-finite or outside [low, high].

    Concrete values raise `ValueError` at once; traced values go through
    `equinox.error_if`, so the error is raised at run time, inside `jit` too.
    """
    lo = "[" if low_inclusive else "("
    hi = "]" if high_inclusive else ")"
    allowed = f"{lo}{'-inf' if low is None else low}, {'inf' if high is None else high}{hi}"

    def bad_mask(v):
        xp = jnp if is_traced(v) else np
        bad = ~xp.isfinite(v)
        if low is not None:
            bad = bad | ((v < low) if low_inclusive else (v <= low))
        if high is not None:
            bad = bad | ((v > high) if high_inclusive else (v >= high))
        return bad

    if is_traced(value):
        return eqx.error_if(
            value, jnp.any(bad_mask(value)), f"{name} out of range: must be finite and in {allowed}"
        )
    array = np.asarray(value)
    bad = bad_mask(array)
    if np.any(bad):
        offending = array[bad] if array.ndim else array
        raise ValueError(
            f"{name} = {np.ravel(offending)[:5].tolist()} is out of range: "
            f"must be finite and in {allowed}"
        )
    return value
