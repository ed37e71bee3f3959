"""What a fit draws: `SersicModel` (one Sersic) and `BulgeDisc` (a Sersic bulge plus an
exponential disc), with any parameter held fixed or bounded, as GALFIT and Imfit users do.

A model names its physical parameters, in the units of `Sersic` (magnitudes, arcsec,
degrees; a bulge + disc prefixes them `bulge_` and `disc_`, and shares one centre `x0, y0`
unless it is freed), and maps its free ones to unbounded coordinates u, which the optimiser
and the sampler move (`jaxgal.fitting.refine`, `jaxgal.fitting.hmc`). One block per free
parameter (or pair):

- a magnitude or a centre: itself (a magnitude clipped to [-50, 100], where a flux still
  fits in float32, so that a wild solver step renders);
- r_eff: ln r_eff (clipped at e^+-15 arcsec);
- n: logit((n - n_min) / (n_max - n_min)) on [0.3, 8];
- (q, pa), both free: w = -(ln q / 2)(cos 2pa, sin 2pa), so q = exp(-2|w|) and the image is
  smooth through q = 1, where (q, pa) has its singular point; the sampler uses
  v = w sqrt(2 / |w|) instead (see `jaxgal.fitting.hmc`);
- a bounded parameter (`bounds={name: (low, high)}`): logit((x - low) / (high - low));
  a q bounded below only (high = 1) keeps the shape pair, with (q - low) / (1 - low) in
  place of q (so a prior uniform in q on (low, 1] is still a Gaussian in v, with no wall
  at q = low for the sampler to hit); a q or pa otherwise fixed or bounded splits the pair:
  q on (0.05, 1] (or its bounds), pa itself, periodic, or its bounds.

Fixed parameters (`fixed={name: value}`) are constants: they stay in the output with a
zero error. Models are frozen and hashable: they are static under `jit` (a new fixed value
compiles anew).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxgal.light.sersic import N_MAX, N_MIN, Sersic, safe_sqrt
from jaxgal.magnitudes import flux_to_magnitude, magnitude_to_flux

Q_MIN = 0.05
# A bounded coordinate stops at |u| = PEG (within 1.2e-4 of the range from the bound): a fit
# that presses on a bound converges there, as Imfit's pegged parameters do, instead of
# running u to infinity; its error is then 0 and `at_bound` says so.
PEG = 9.0


# --- blocks: free coordinates -> physical parameters ----------------------------------------


@dataclass(frozen=True)
class _Free:
    """x = u (clipped to `low`, `high` if given); periodic with `period` if given."""

    index: int
    low: float | None = None
    high: float | None = None
    period: float | None = None
    size: ClassVar[int] = 1

    def forward(self, u):
        value = u[0]
        if self.low is not None:
            value = jnp.clip(value, self.low, self.high)
        if self.period is not None:
            value = jnp.mod(value, self.period)
        return {self.index: value}

    def inverse(self, values):
        return [values[self.index]]

    def to_sampling(self, u):
        return list(u)

    def from_sampling(self, z):
        return list(z)

    def log_jacobian(self, z):
        return jnp.zeros_like(z[0])


@dataclass(frozen=True)
class _Log(_Free):
    """x = exp(u), u clipped to [-15, 15]."""

    def forward(self, u):
        return {self.index: jnp.exp(jnp.clip(u[0], -15.0, 15.0))}

    def inverse(self, values):
        return [jnp.log(values[self.index])]

    def log_jacobian(self, z):
        return z[0]


@dataclass(frozen=True)
class _Interval(_Free):
    """x = low + (high - low) sigmoid(u), u clipped to [-PEG, PEG]."""

    def forward(self, u):
        t = jnp.clip(u[0], -PEG, PEG)
        return {self.index: self.low + (self.high - self.low) * jax.nn.sigmoid(t)}

    def inverse(self, values):
        fraction = (values[self.index] - self.low) / (self.high - self.low)
        return [jnp.log(fraction) - jnp.log1p(-fraction)]

    def log_jacobian(self, z):
        t = z[0]
        return jnp.log(self.high - self.low) - jax.nn.softplus(-t) - jax.nn.softplus(t)


@dataclass(frozen=True)
class _Shape:
    """(q, pa) from w = -(ln f / 2)(cos 2pa, sin 2pa), f = (q - q_low) / (1 - q_low) (q in
    (q_low, 1], q_low 0 unless q is bounded below); the sampler's v = w sqrt(2 / |w|)."""

    q_index: int
    pa_index: int
    q_low: float = 0.0
    size: ClassVar[int] = 2

    def forward(self, u):
        w1, w2 = u
        length = jnp.minimum(safe_sqrt(w1 * w1 + w2 * w2), 20.0)
        # atan2 at w = 0 has no gradient to give: the image does not depend on pa at q = 1
        at_origin = length == 0.0
        pa = 0.5 * jnp.rad2deg(
            jnp.arctan2(jnp.where(at_origin, 0.0, w2), jnp.where(at_origin, 1.0, w1))
        )
        q = self.q_low + (1.0 - self.q_low) * jnp.exp(-2.0 * length)
        return {self.q_index: q, self.pa_index: jnp.mod(pa, 180.0)}

    def inverse(self, values):
        half_ln_q = -0.5 * jnp.log((values[self.q_index] - self.q_low) / (1.0 - self.q_low))
        angle = jnp.deg2rad(2.0 * values[self.pa_index])
        return [half_ln_q * jnp.cos(angle), half_ln_q * jnp.sin(angle)]

    def to_sampling(self, u):
        w1, w2 = u
        length = jnp.sqrt(w1 * w1 + w2 * w2)
        scale = jnp.where(length > 0, jnp.sqrt(2.0 / jnp.where(length > 0, length, 1.0)), 0.0)
        return [w1 * scale, w2 * scale]

    def from_sampling(self, z):
        v1, v2 = z
        half_length = 0.5 * safe_sqrt(v1 * v1 + v2 * v2)
        return [half_length * v1, half_length * v2]

    def log_jacobian(self, z):
        # polar (rho, phi) of v: q = q_low + (1 - q_low) exp(-rho^2), pa = (90 / pi) phi
        # degrees, so dq dpa = (180 / pi) (1 - q_low) exp(-rho^2) dv1 dv2
        v1, v2 = z
        return jnp.log(180.0 / jnp.pi * (1.0 - self.q_low)) - (v1 * v1 + v2 * v2)


# --- models ---------------------------------------------------------------------------------


def _frozen_items(mapping, what):
    if mapping is None:
        return ()
    if isinstance(mapping, tuple):
        return mapping
    if not isinstance(mapping, dict):
        raise TypeError(f"{what} must be a dict of parameter names, got {type(mapping).__name__}")
    return tuple(sorted((str(k), v) for k, v in mapping.items()))


@dataclass(frozen=True)
class _Model:
    """A model of named parameters, some fixed, some bounded (see the module's docstring)."""

    fixed: tuple = field(default=())
    bounds: tuple = field(default=())

    # (prefix, has its own n, has its own centre) per Sersic component
    def components(self) -> tuple[tuple[str, bool, bool], ...]:
        raise NotImplementedError

    def __post_init__(self):
        fixed = tuple((name, float(value)) for name, value in _frozen_items(self.fixed, "fixed"))
        bounds = tuple(
            (name, (float(pair[0]), float(pair[1])))
            for name, pair in _frozen_items(self.bounds, "bounds")
        )
        object.__setattr__(self, "fixed", fixed)
        object.__setattr__(self, "bounds", bounds)
        names = self.names
        for name, value in fixed:
            if name not in names:
                raise ValueError(f"fixed: unknown parameter {name!r}; this model has {names}")
            _check_value(name, value)
        for name, (low, high) in bounds:
            if name not in names:
                raise ValueError(f"bounds: unknown parameter {name!r}; this model has {names}")
            if name in dict(fixed):
                raise ValueError(f"{name!r} is both fixed and bounded")
            if not low < high:
                raise ValueError(f"bounds of {name!r} must have low < high, got ({low}, {high})")
            _check_value(name, low, bound=True)
            _check_value(name, high, bound=True)

    @cached_property
    def names(self) -> tuple[str, ...]:
        """The physical parameters, in order."""
        names = []
        shared = False
        for prefix, has_n, has_centre in self.components():
            names += [prefix + "magnitude", prefix + "r_eff"]
            names += [prefix + "n"] if has_n else []
            names += [prefix + "q", prefix + "pa"]
            if has_centre:
                names += [prefix + "x0", prefix + "y0"]
            else:
                shared = True
        return tuple(names + (["x0", "y0"] if shared else []))

    @cached_property
    def periodic(self) -> tuple[int, ...]:
        """Indices of the position angles (period 180 degrees)."""
        return tuple(i for i, name in enumerate(self.names) if _kind(name) == "pa")

    @cached_property
    def _blocks(self):
        fixed, bounds = dict(self.fixed), dict(self.bounds)
        index = {name: i for i, name in enumerate(self.names)}
        blocks = []
        for name in self.names:
            kind, i = _kind(name), index[name]
            if name in fixed or (kind == "pa" and blocks and _pairs_with(blocks[-1], i)):
                continue
            pa = name[: -len("q")] + "pa" if kind == "q" else None
            pa_free = pa is not None and pa not in fixed and pa not in bounds
            if kind == "q" and pa_free and name in bounds and bounds[name][1] == 1.0:
                # bounded below only: the shape pair stays, on (low, 1]
                blocks.append(_Shape(i, index[pa], q_low=bounds[name][0]))
            elif name in bounds:
                low, high = bounds[name]
                blocks.append(_Interval(i, low, high))
            elif kind == "magnitude":
                blocks.append(_Free(i, -50.0, 100.0))
            elif kind == "r_eff":
                blocks.append(_Log(i))
            elif kind == "n":
                blocks.append(_Interval(i, N_MIN, N_MAX))
            elif kind == "q":
                blocks.append(_Shape(i, index[pa]) if pa_free else _Interval(i, Q_MIN, 1.0))
            elif kind == "pa":
                blocks.append(_Free(i, period=180.0))
            else:
                blocks.append(_Free(i))
        return tuple(blocks)

    @cached_property
    def size(self) -> int:
        """The number of free coordinates."""
        return sum(block.size for block in self._blocks)

    @cached_property
    def coordinates(self) -> tuple[str, ...]:
        """Names of the free coordinates u (see the module's docstring)."""
        out = []
        for block in self._blocks:
            if isinstance(block, _Shape):
                stem = self.names[block.q_index][: -len("q")]
                out += [stem + "w1", stem + "w2"]
            else:
                name = self.names[block.index]
                if isinstance(block, _Log):
                    out.append("ln_" + name)
                elif isinstance(block, _Interval):
                    out.append(name + "_logit")
                else:
                    out.append(name)
        return tuple(out)

    @cached_property
    def sampling(self) -> tuple[str, ...]:
        """Names of the sampler's coordinates z: each shape pair w1, w2 becomes v1, v2."""
        return tuple(
            name[:-2] + "v" + name[-1] if name[-2:] in ("w1", "w2") else name
            for name in self.coordinates
        )

    def _split(self, u):
        parts, start = [], 0
        for block in self._blocks:
            parts.append([u[..., start + k] for k in range(block.size)])
            start += block.size
        return parts

    def _join(self, parts):
        return jnp.stack([x for part in parts for x in part], axis=-1)

    def physical(self, u):
        """The physical parameters (..., len(names)) of coordinates u (..., size)."""
        u = jnp.asarray(u)
        values = dict.fromkeys(range(len(self.names)))
        for block, part in zip(self._blocks, self._split(u), strict=True):
            values.update(block.forward(part))
        fixed = dict(self.fixed)
        batch = u.shape[:-1]
        for i, name in enumerate(self.names):
            if name in fixed:
                values[i] = jnp.full(batch, fixed[name], u.dtype)
        return jnp.stack([values[i] for i in range(len(self.names))], axis=-1)

    def unconstrained(self, values):
        """Coordinates u (..., size) of physical `values` (..., len(names)); values outside
        a bound are moved just inside it, fixed ones are ignored."""
        values = jnp.asarray(values)
        columns = [values[..., i] for i in range(values.shape[-1])]
        for block in self._blocks:
            if isinstance(block, _Interval):
                margin = 1e-3 * (block.high - block.low)
                columns[block.index] = jnp.clip(
                    columns[block.index], block.low + margin, block.high - margin
                )
            elif isinstance(block, _Shape) and block.q_low > 0.0:
                margin = 1e-3 * (1.0 - block.q_low)
                columns[block.q_index] = jnp.clip(columns[block.q_index], block.q_low + margin, 1.0)
        return self._join([block.inverse(columns) for block in self._blocks])

    def canonical(self, u):
        """u with its bounded coordinates clipped to [-PEG, PEG]: the same physical values
        (a solver may run a coordinate pressing its bound far beyond PEG)."""
        u = jnp.asarray(u)
        parts = [
            [jnp.clip(value, -PEG, PEG) for value in part] if isinstance(block, _Interval) else part
            for block, part in zip(self._blocks, self._split(u), strict=True)
        ]
        return self._join(parts)

    def at_bound(self, u):
        """(..., size) True for the bounded coordinates of u that sit on a bound (|u| >= PEG:
        within 1.2e-4 of the range from it); n's range [0.3, 8] counts as a bound."""
        u = jnp.asarray(u)
        flags = []
        for block, part in zip(self._blocks, self._split(u), strict=True):
            if isinstance(block, _Shape):
                # q within e^-PEG of the range from its lower bound, as for an interval
                length = jnp.sqrt(part[0] * part[0] + part[1] * part[1])
                on_bound = (block.q_low > 0.0) & (2.0 * length >= PEG) & jnp.isfinite(length)
                flags += [on_bound, on_bound]
                continue
            for value in part:
                bounded = isinstance(block, _Interval)
                flags.append(bounded & (jnp.abs(value) >= PEG) & jnp.isfinite(value))
        return jnp.stack(flags, axis=-1)

    def to_sampling(self, u):
        """The sampler's coordinates z of u: each shape pair w becomes v."""
        return self._join(
            [b.to_sampling(p) for b, p in zip(self._blocks, self._split(u), strict=True)]
        )

    def from_sampling(self, z):
        """u of the sampler's coordinates z."""
        return self._join(
            [b.from_sampling(p) for b, p in zip(self._blocks, self._split(z), strict=True)]
        )

    def log_jacobian(self, z):
        """log |det d(free physical parameters) / dz|, analytic, block by block."""
        total = 0.0
        for block, part in zip(self._blocks, self._split(jnp.asarray(z)), strict=True):
            total = total + block.log_jacobian(part)
        return total

    def profiles(self, values, zero_point) -> list[Sersic]:
        """The `Sersic` components of physical `values` (leading axes become batch axes)."""
        index = {name: i for i, name in enumerate(self.names)}

        def column(name):
            return values[..., index[name]]

        out = []
        for prefix, has_n, has_centre in self.components():
            centre = prefix if has_centre else ""
            n = column(prefix + "n") if has_n else jnp.ones_like(column(prefix + "r_eff"))
            out.append(
                Sersic(
                    magnitude_to_flux(column(prefix + "magnitude"), zero_point),
                    column(prefix + "r_eff"),
                    n,
                    column(prefix + "q"),
                    column(prefix + "pa"),
                    column(centre + "x0"),
                    column(centre + "y0"),
                )
            )
        return out

    def within_prior(self, prior: dict | None):
        """This model bounded by `prior`'s supports (numpyro distributions by name): each free
        parameter whose prior lives on an interval gets that interval as its bounds (within
        any bounds of its own), so that the sampler's coordinates cover the prior's support
        and nothing else; position angles stay periodic. Where the posterior presses on the
        edge of the support (a faint galaxy's n, a centre prior of half a pixel), NUTS in
        unbounded coordinates hits a wall of zero density there and diverges; in these it
        sees a smooth, decaying density instead. The posterior is the same."""
        if not prior:
            return self
        fixed, bounds = dict(self.fixed), dict(self.bounds)
        for name, distribution in prior.items():
            if name not in self.names or name in fixed or _kind(name) == "pa":
                continue
            support = distribution.support
            low = getattr(support, "lower_bound", None)
            high = getattr(support, "upper_bound", None)
            if low is None or high is None or np.ndim(low) or np.ndim(high):
                continue  # one-sided or unbounded: no interval to map
            own = bounds.get(name, (-np.inf, np.inf))
            bounds[name] = (max(float(low), own[0]), min(float(high), own[1]))
        return dataclasses.replace(self, bounds=bounds)

    def with_constraints(self, values):
        """`values` (..., len(names)) with fixed parameters set and bounded ones clipped."""
        values = jnp.asarray(values)
        for name, value in self.fixed:
            values = values.at[..., self.names.index(name)].set(value)
        for name, (low, high) in self.bounds:
            i = self.names.index(name)
            values = values.at[..., i].set(jnp.clip(values[..., i], low, high))
        return values


def _pairs_with(block, pa_index):
    return isinstance(block, _Shape) and block.pa_index == pa_index


def _kind(name: str) -> str:
    for kind in ("magnitude", "r_eff", "n", "q", "pa", "x0", "y0"):
        if name == kind or name.endswith("_" + kind):
            return kind
    raise ValueError(f"no kind for parameter {name!r}")


def _check_value(name, value, bound=False):
    kind = _kind(name)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    allowed = {
        "r_eff": (0.0, np.inf, False),
        "n": (N_MIN, N_MAX, True),
        "q": (0.0, 1.0, False),
    }
    if kind in allowed:
        low, high, closed_low = allowed[kind]
        below = value < low if closed_low else value <= low
        if below or value > high:
            side = "[" if closed_low else "("
            raise ValueError(
                f"{name} {'bound' if bound else 'value'} {value} is outside {side}{low}, {high}]"
            )


def sersic_values(galaxy: Sersic, zero_point):
    """(..., 7) physical values (magnitude, r_eff, n, q, pa, x0, y0) of a (batched) `Sersic`."""
    return jnp.stack(
        [
            flux_to_magnitude(galaxy.flux, zero_point),
            jnp.asarray(galaxy.r_eff),
            jnp.asarray(galaxy.n),
            jnp.asarray(galaxy.q),
            jnp.asarray(galaxy.pa),
            jnp.asarray(galaxy.x0),
            jnp.asarray(galaxy.y0),
        ],
        axis=-1,
    )


@dataclass(frozen=True)
class SersicModel(_Model):
    """One Sersic profile: magnitude, r_eff, n, q, pa, x0, y0 (the default model).

    `SersicModel(fixed={"n": 4.0})` fits a de Vaucouleurs profile; `bounds={"r_eff": (0.1,
    3.0)}` keeps r_eff inside (0.1, 3) arcsec."""

    def components(self):
        return (("", True, True),)

    def start(self, sersic):
        """Starting values (..., 7) from a one-Sersic guess (..., 7), within the constraints."""
        return self.with_constraints(sersic)


@dataclass(frozen=True)
class BulgeDisc(_Model):
    """A Sersic bulge plus an exponential (n = 1) disc, as in GaLNets II (Qiu et al. 2023).

    Parameters: bulge_magnitude, bulge_r_eff, bulge_n, bulge_q, bulge_pa, disc_magnitude,
    disc_r_eff, disc_q, disc_pa and one centre x0, y0; with `shared_centre=False` each
    component has its own (bulge_x0, bulge_y0, disc_x0, disc_y0). Each component has its
    own size, axis ratio and position angle. `fixed` and `bounds` as for `SersicModel`,
    e.g. `BulgeDisc(fixed={"bulge_n": 4.0})` for a de Vaucouleurs bulge.
    """

    shared_centre: bool = True

    def components(self):
        own = not self.shared_centre
        return (("bulge_", True, own), ("disc_", False, own))

    def start(self, sersic, bulge_fraction=None):
        """Starting values from a one-Sersic fit (..., 7) of the whole galaxy: the light split
        by a bulge-to-total ratio that grows with its n (0.1 at n = 1 to 0.9 at n = 4.5,
        unless `bulge_fraction` is given), a bulge half as large, rounder, with n = 4,
        and a disc 1.3 times as large with the galaxy's shape."""
        sersic = jnp.asarray(sersic)
        magnitude, r_eff, n, q, pa, x0, y0 = (sersic[..., i] for i in range(7))
        if bulge_fraction is None:
            bulge_fraction = jnp.clip(0.1 + 0.8 * (n - 1.0) / 3.5, 0.1, 0.9)
        bulge_fraction = jnp.broadcast_to(jnp.asarray(bulge_fraction, sersic.dtype), n.shape)
        columns = {
            "bulge_magnitude": magnitude - 2.5 * jnp.log10(bulge_fraction),
            "bulge_r_eff": 0.5 * r_eff,
            "bulge_n": jnp.full_like(n, 4.0),
            "bulge_q": 0.5 * (1.0 + q),
            "bulge_pa": pa,
            "disc_magnitude": magnitude - 2.5 * jnp.log10(1.0 - bulge_fraction),
            "disc_r_eff": 1.3 * r_eff,
            "disc_q": q,
            "disc_pa": pa,
        }
        for name in ("x0", "y0"):
            value = x0 if name == "x0" else y0
            for prefix in ("", "bulge_", "disc_"):
                columns[prefix + name] = value
        values = jnp.stack([columns[name] for name in self.names], axis=-1)
        return self.with_constraints(values)


SERSIC = SersicModel()
