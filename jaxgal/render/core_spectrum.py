"""The core's spectrum on the pixel grid, with its aliases summed, and its derivatives.

The core (`jaxgal.render.core_transform`) enters a render as the pixel grid's half spectrum
(rfft2 layout) of the core convolved with the PSF: each bin sums the aliases
k + 2 pi m / pixel inside |k| <= `bandwidth` pi / pixel, each with its phase. That sum
dominates the cost of a render's Jacobian: forward-mode autodiff carries one tangent per
parameter through the table look-up, the Bessel table and the complex phases (7 of them
for a refinement's Jacobian, 4x the cost of the value). Its derivatives are written out
here instead (`jax.custom_jvp`): the core's transform G(t), t = kappa r1, depends on

- r_eff, n and r1 through its table, whose three derivatives come from one forward-mode
  pass through the table's matrix product (a few hundred nodes);
- q and pa through kappa = |A^-T k| (dG = G'(t) r1 dkappa), and r1 also through t;
- the centre through each alias's phase exp(-i k_m . offset), k_m its wavenumber;
- the flux as a factor.

So one pass of the stencil gives G, its three table derivatives and G'(t), and one
weighted sum over the aliases per partial derivative gives the spectrum's derivatives;
a tangent is then a sum of those partials times scalars (the same whatever the number of
tangents pushed at once). Derivatives with respect to anything else (the PSF's transfer
function, the pixel scale) go through ordinary autodiff of the same sum.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero

from jaxgal.light.sersic import Sersic
from jaxgal.render.core_transform import (
    TABLE_STEP,
    core_table,
    core_transform,
    rotated_wavenumbers,
    table_stencil,
)


def core_spectrum(profile: Sersic, psf, shape, pixel, origin, r1, bandwidth, t_max):
    """The pixel grid's half spectrum (rfft2 layout) of the core convolved with the PSF.

    `shape` is the grid's (ny, nx) and `origin` the position of its first node. Each bin
    sums the aliases k + 2 pi m / pixel inside |k| <= `bandwidth` pi / pixel.
    """
    box_ny, box_nx = shape
    rows = np.rint(np.fft.fftfreq(box_ny) * box_ny).astype(int)
    columns = np.arange(box_nx // 2 + 1)
    # aliases m = -M .. M, M the fewest that reach the bandwidth
    reach = int(np.ceil(0.5 * (bandwidth - 1.0)))
    shifts = np.arange(-reach, reach + 1)
    row_index = (rows[None, :] + box_ny * shifts[:, None]).reshape(-1)
    column_index = (columns[None, :] + box_nx * shifts[:, None]).reshape(-1)
    # |k| pixel <= bandwidth pi: fixed by the grid's shape, whatever the pixel
    inside = (2.0 * column_index[None, :] / box_nx) ** 2 + (
        2.0 * row_index[:, None] / box_ny
    ) ** 2 <= bandwidth * bandwidth
    dkx = 2.0 * jnp.pi / (box_nx * pixel)
    dky = 2.0 * jnp.pi / (box_ny * pixel)
    kx = dkx * jnp.asarray(column_index, pixel.dtype)
    ky = dky * jnp.asarray(row_index, pixel.dtype)

    weights = jnp.where(inside, psf.transfer(kx, ky, pixel), 0.0)
    weights = weights.reshape(shifts.size, rows.size, shifts.size, columns.size)
    return core_term(
        profile.flux,
        profile.r_eff,
        profile.n,
        profile.q,
        profile.pa,
        r1,
        profile.x0 - origin[0],
        profile.y0 - origin[1],
        weights,
        kx,
        ky,
        pixel,
        t_max=float(t_max),
    )


def _alias_sum(partials, weights, offset_x, offset_y, pixel):
    """sum_m partials_m W_m exp(-2 pi i m . offset / pixel) for every bin, for each partial.

    `partials` (P, M ny, M nx) real, `weights` W (M, ny, M, nx), real or complex. Real
    products and sums only: XLA on the CPU is slow with complex element-wise work, and
    recomputes fused producers for every slice that consumes them, so the aliases are
    summed as whole axes.
    """
    size, rows, _, columns = weights.shape
    shifts = jnp.arange(size, dtype=pixel.dtype) - (size - 1) // 2
    angle_x = (-2.0 * jnp.pi / pixel) * offset_x * shifts
    angle_y = (-2.0 * jnp.pi / pixel) * offset_y * shifts
    angle = (angle_y[:, None] + angle_x[None, :])[:, None, :, None]
    alias = jnp.cos(angle) + 1j * jnp.sin(angle)
    terms = weights * alias
    partials = partials.reshape(partials.shape[0], size, rows, size, columns)
    real = jnp.sum(partials * jnp.real(terms), axis=(1, 3))
    imaginary = jnp.sum(partials * jnp.imag(terms), axis=(1, 3))
    return jax.lax.complex(real, imaginary)


def _bin_phase(kx, ky, offset_x, offset_y, size):
    """exp(-i k . offset) at each bin's own wavenumber (alias m = 0)."""
    rows, columns = ky.shape[0] // size, kx.shape[0] // size
    kx_bins = kx.reshape(size, columns)[(size - 1) // 2]
    ky_bins = ky.reshape(size, rows)[(size - 1) // 2]
    return jnp.exp(-1j * ky_bins * offset_y)[:, None] * jnp.exp(-1j * kx_bins * offset_x)[None, :]


@partial(jax.custom_jvp, nondiff_argnums=(12,))
def core_term(flux, r_eff, n, q, pa, r1, offset_x, offset_y, weights, kx, ky, pixel, t_max):
    """flux sum over aliases m of G(k_m) W_m exp(-i k_m . offset), per bin (ny, nx//2+1).

    G the core's transform per unit flux (`core_transform`, table to `t_max`) at the alias
    wavenumbers (`ky`, `kx`) (M ny and M nx of them), W the PSF's transfer function there,
    zero outside the bandwidth, shaped (M, ny, M, nx//2+1); `offset` the centre's offset
    from the grid's first node.
    """
    profile = Sersic(1.0, r_eff, n, q, pa)
    transform = core_transform(profile, kx, ky, r1, t_max)
    folded = _alias_sum(transform[None], weights, offset_x, offset_y, pixel)[0]
    return flux * folded * _bin_phase(kx, ky, offset_x, offset_y, weights.shape[0])


def _table_and_derivatives(r_eff, n, r1, t_max):
    """The core's table (L,) and its derivatives in r_eff, n and r1, stacked as (L, 4)."""
    variables = jnp.stack([r_eff, n, r1])

    def table(v):
        result = core_table(Sersic(1.0, v[0], v[1], 1.0, 0.0), v[2], t_max)
        return result, result

    jacobian, value = jax.jacfwd(table, has_aux=True)(variables)
    return jnp.concatenate([value[:, None], jacobian], axis=1)


def _partials(r_eff, n, q, pa, r1, kx, ky, t_max):
    """G and its derivatives in r_eff, n, q, pa and r1 at the wavenumbers (ky, kx)."""
    tables = _table_and_derivatives(r_eff, n, r1, t_max)
    k_major, k_minor = rotated_wavenumbers(pa, kx, ky)
    square = k_major * k_major / q + k_minor * k_minor * q
    positive = square > 0
    kappa = jnp.where(positive, jnp.sqrt(jnp.where(positive, square, 1.0)), 0.0)
    inverse = jnp.where(positive, 1.0 / jnp.where(positive, kappa, 1.0), 0.0)
    kappa_q = 0.5 * (k_minor * k_minor - k_major * k_major / (q * q)) * inverse
    kappa_pa = jnp.deg2rad(1.0) * k_major * k_minor * (1.0 / q - q) * inverse

    # `read_table`'s stencil, and the derivatives of its weights in s
    index, s, stencil, live = table_stencil(tables.shape[0], kappa * r1)
    slope_stencil = (
        -(3.0 * s * s - 6.0 * s + 2.0) / 6.0,
        (3.0 * s * s - 4.0 * s - 1.0) / 2.0,
        -(3.0 * s * s - 2.0 * s - 2.0) / 2.0,
        (3.0 * s * s - 1.0) / 6.0,
    )
    # one gather of a 16-value row (the stencil's 4 nodes of the 4 tables) per wavenumber
    size = tables.shape[0]
    neighbours = jnp.concatenate(
        [tables[np.clip(np.arange(size) + j - 1, 0, size - 1)] for j in range(4)], axis=1
    )
    gathered = neighbours[index]
    rows = [gathered[..., 4 * j : 4 * j + 4] for j in range(4)]  # each (ny, nx, 4)
    values = sum(w[..., None] * row for w, row in zip(stencil, rows, strict=True))
    slope = sum(w * row[..., 0] for w, row in zip(slope_stencil, rows, strict=True))
    values = jnp.where(live[..., None], values, 0.0)
    slope = jnp.where(live, slope, 0.0) / TABLE_STEP  # dG / dt
    transform, by_r_eff, by_n, by_r1_table = (values[..., i] for i in range(4))
    return (
        transform,
        by_r_eff,
        by_n,
        slope * r1 * kappa_q,
        slope * r1 * kappa_pa,
        (slope * kappa + by_r1_table),
    )


@partial(core_term.defjvp, symbolic_zeros=True)
def _core_term_jvp(t_max, primals, tangents):
    flux, r_eff, n, q, pa, r1, offset_x, offset_y, weights, kx, ky, pixel = primals
    transform, *shape_partials = _partials(r_eff, n, q, pa, r1, kx, ky, t_max)
    # d/d offset of exp(-i k_m . offset) is -i k_m: G k_m summed like G, times -i
    stacked = jnp.stack([transform, *shape_partials, transform * kx, transform * ky[:, None]])
    phase = _bin_phase(kx, ky, offset_x, offset_y, weights.shape[0])
    sums = _alias_sum(stacked, weights, offset_x, offset_y, pixel) * phase
    primal = flux * sums[0]
    # d/d flux, r_eff, n, q, pa, r1, offset_x, offset_y
    derivatives = jnp.stack(
        [sums[0], *(flux * sums[1:6]), -1j * flux * sums[6], -1j * flux * sums[7]]
    )
    scalars = jnp.stack(
        [jnp.zeros((), flux.dtype) if isinstance(t, SymbolicZero) else t for t in tangents[:8]]
    )
    # The tangent as a matrix product, which XLA cannot fuse with the derivatives' producers:
    # fused, it would recompute the phases (cosines, sines) for every tangent and bin, 3x
    # the cost of the whole sum. Real arithmetic (complex element-wise work is slow on CPUs).
    parts = jnp.stack([jnp.real(derivatives), jnp.imag(derivatives)], axis=1)
    combined = jnp.tensordot(scalars, parts, axes=1)
    tangent = jax.lax.complex(combined[0], combined[1])
    others = tangents[8:]
    if not all(isinstance(t, SymbolicZero) for t in others):
        # the transfer function, the wavenumbers or the pixel moved: ordinary autodiff
        def by_others(weights, kx, ky, pixel):
            return core_term.fun(*primals[:8], weights, kx, ky, pixel, t_max)

        instantiated = [
            jnp.zeros(t.shape, t.dtype) if isinstance(t, SymbolicZero) else t for t in others
        ]
        tangent = tangent + jax.jvp(by_others, tuple(primals[8:]), tuple(instantiated))[1]
    return primal, tangent
