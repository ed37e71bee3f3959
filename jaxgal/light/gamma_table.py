"""A per-profile table of the regularised lower incomplete gamma function P(a, x).

Evaluating `jax.scipy.special.gammainc` at every one of the ~10^5 points an exact pixel
integration needs would dominate the cost, so each profile tabulates P(a, x) once on a
uniform grid in u = log x and interpolates with cubic Hermite polynomials whose slopes
are the exact derivative dP/du = x^a e^-x / Gamma(a). With 384 nodes over the range of
u that matters (narrower as a grows), the interpolation error is below 5e-8 for
0.3 <= a <= 32 (tested against scipy). Below the table P follows its power law
x^a / Gamma(a + 1); above it, P = 1. The table's values depend on `a` through
`gammainc`, whose gradient in `a` JAX provides, so gradients flow to the Sersic index.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jax.scipy.special import gammainc, gammaln
from jaxtyping import Array, Float

from jaxgal.light.hermite import hermite_lookup

TABLE_NODES = 384
# The table spans u in [log(a) - below, log(a) + above] (a is the mean of x), with
# below = SPAN_BELOW / sqrt(max(a, 1)) and above = SPAN_ABOVE / sqrt(max(a, 1)) + 1:
# P's transition narrows as 1 / sqrt(a) in u.
SPAN_BELOW = 14.0
SPAN_ABOVE = 4.0


class GammaTable(eqx.Module):
    """P(a, x) tabulated in u = log x, for one shape parameter `a`."""

    shape_a: Float[Array, ""]
    u_start: Float[Array, ""]
    u_step: Float[Array, ""]
    values: Float[Array, " nodes"]
    slopes: Float[Array, " nodes"]

    @classmethod
    def build(cls, shape_a) -> GammaTable:
        shape_a = jnp.asarray(shape_a)
        center = jnp.log(shape_a)
        width = 1.0 / jnp.sqrt(jnp.maximum(shape_a, 1.0))
        below, above = SPAN_BELOW * width, SPAN_ABOVE * width + 1.0
        u_start = center - below
        u_step = (below + above) / (TABLE_NODES - 1)
        u = u_start + u_step * jnp.arange(TABLE_NODES, dtype=shape_a.dtype)
        x = jnp.exp(u)
        values = gammainc(shape_a, x)
        slopes = jnp.exp(shape_a * u - x - gammaln(shape_a))
        return cls(shape_a, u_start, u_step, values, slopes)

    def __call__(self, x: Float[Array, "..."]) -> Float[Array, "..."]:
        """P(a, x) for x >= 0 (x = 0 gives 0, with a finite gradient)."""
        positive = x > 0
        u = jnp.log(jnp.where(positive, x, 1.0))
        position = (u - self.u_start) / self.u_step
        last = TABLE_NODES - 1
        index = jnp.clip(jnp.floor(position), 0, last - 1).astype(jnp.int32)
        t = jnp.clip(position - index, 0.0, 1.0)
        inside = hermite_lookup(self.values, self.slopes, index, t, self.u_step)
        # Below the table: P ~ x^a / Gamma(a+1), matched to the first node.
        below = self.values[0] * jnp.exp(self.shape_a * jnp.minimum(u - self.u_start, 0.0))
        value = jnp.where(position < 0, below, jnp.where(position > last, 1.0, inside))
        return jnp.where(positive, value, 0.0)
