"""HMC posteriors (`jaxgal.fitting.hmc`): calibration against the truths of simulated
galaxies drawn from the prior, the Jacobian of the sampler's coordinates against autodiff,
batch independence, arviz diagnostics against numpy, and `fit(method="hmc")` against the
Laplace errors of refinement at high S/N.

Most tests share one compiled sampler (one image shape, batch size and chain length): the
forward model there is the Sersic surface brightness at pixel centres times the pixel area,
which is ~50 times cheaper than `render`'s exact pixel integrals and just as valid a
forward model for a calibration (the data are simulated with it, too).
"""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as dist
import pytest

import jaxgal
from jaxgal.fitting import PHYSICAL, from_unconstrained, to_unconstrained
from jaxgal.fitting.diagnostics import convergence, corner_plot, summary, to_inference_data
from jaxgal.fitting.hmc import (
    log_jacobian,
    posterior_intervals,
    sample_posterior,
    sampling_from_unconstrained,
    sampling_physical,
    unconstrained_from_sampling,
)

# the tests of the module's posterior (48 galaxies) run in one test worker, which computes it
# once
POSTERIOR_GROUP = pytest.mark.xdist_group("hmc_posterior")
ZERO_POINT, PIXEL_SCALE, SHAPE, SIGMA = 30.0, 0.2, (15, 15), 10.0
DISTINCT, REPEATED, WARMUP, DRAWS, CHAINS = 40, 8, 100, 100, 2
COUNT = DISTINCT + REPEATED  # the first REPEATED galaxies again at the end of the batch
# smooth densities with full support in the sampler's coordinates (q ~ Beta(3, 1) is
# positive at q = 1, so its density in v is finite there)
PRIOR = {
    "magnitude": dist.Normal(21.0, 0.5),
    "r_eff": dist.LogNormal(np.log(0.6), 0.25),
    "n": dist.LogNormal(np.log(1.5), 0.3),
    "q": dist.Beta(3.0, 1.0),
    "pa": dist.Uniform(0.0, 180.0),
    "x0": dist.Normal(0.0, 0.1),
    "y0": dist.Normal(0.0, 0.1),
}


def centre_sampled(profiles, grid, psf):
    """The forward model: a Sersic (or a list of them, as the sampler passes) sampled at
    the pixel centres."""
    x, y = jnp.meshgrid(grid.x_centres(), grid.y_centres())
    profiles = profiles if isinstance(profiles, list) else [profiles]
    return sum(p.surface_brightness(x, y) for p in profiles) * grid.pixel_scale**2


def _run(images, starts, keys):
    return sample_posterior(
        images,
        SIGMA,
        None,
        starts,
        PIXEL_SCALE,
        ZERO_POINT,
        keys,
        prior=PRIOR,
        num_warmup=WARMUP,
        num_samples=DRAWS,
        num_chains=CHAINS,
        max_tree_depth=4,
        forward=centre_sampled,
    )


@pytest.fixture(scope="module")
def simulated():
    """DISTINCT galaxies drawn from PRIOR (by numpyro, not by the sampler's coordinates),
    their noisy images, starting points as refinement's optimum would scatter, and
    keys; the first REPEATED again, in reverse order, at the end of the batch."""
    keys = jax.random.split(jax.random.key(7), len(PHYSICAL) + 3)
    truth = np.stack(
        [np.asarray(PRIOR[name].sample(k, (COUNT,))) for name, k in zip(PHYSICAL, keys)], -1
    )
    galaxies = jaxgal.Sersic(
        jaxgal.magnitude_to_flux(jnp.asarray(truth[:, 0]), ZERO_POINT),
        *(jnp.asarray(truth[:, i]) for i in range(1, 7)),
    )
    grid = jaxgal.PixelGrid(SHAPE, PIXEL_SCALE)
    clean = jax.vmap(lambda galaxy: centre_sampled(galaxy, grid, None))(galaxies)
    images = clean + SIGMA * jax.random.normal(keys[-3], clean.shape)
    # refinement's optimum scatters about the truth with the Fisher covariance: draw the
    # starting points so (the unit ridge keeps the shape's covariance finite at q = 1)
    truth_u = to_unconstrained(galaxies, ZERO_POINT)

    def scaled_model(u):
        return centre_sampled(from_unconstrained(u, ZERO_POINT), grid, None).ravel() / SIGMA

    jacobians = jax.vmap(jax.jacfwd(scaled_model))(truth_u)
    precision = jnp.einsum("bpi,bpj->bij", jacobians, jacobians) + jnp.eye(7)
    factors = jnp.linalg.cholesky(jnp.linalg.inv(precision))
    noise = jax.random.normal(keys[-2], truth_u.shape)
    starts = truth_u + jnp.einsum("bij,bj->bi", factors, noise)
    galaxy_keys = jax.random.split(keys[-1], COUNT)
    again = np.arange(REPEATED)[::-1]
    images = images.at[DISTINCT:].set(images[again])
    starts = starts.at[DISTINCT:].set(starts[again])
    galaxy_keys = galaxy_keys.at[DISTINCT:].set(galaxy_keys[again])
    return truth[:DISTINCT], images, starts, galaxy_keys


@pytest.fixture(scope="module")
def posterior(simulated):
    _, images, starts, galaxy_keys = simulated
    result = jax.block_until_ready(_run(images, starts, galaxy_keys))
    steps = np.asarray(result.leapfrog_steps) / DRAWS
    print(f"leapfrog steps a draw: mean {steps.mean():.1f}, max {steps.max():.1f}")
    return result


def _inside(truth, intervals):
    inside = np.empty(truth.shape, bool)
    for index in range(truth.shape[1]):
        value = truth[:, index]
        if index == 4:  # pa is periodic: compare on the interval's branch
            centre = intervals["median"][:, 4]
            value = centre + (value - centre + 90.0) % 180.0 - 90.0
        inside[:, index] = (intervals["lower"][:, index] <= value) & (
            value <= intervals["upper"][:, index]
        )
    return inside


@POSTERIOR_GROUP
def test_68_percent_intervals_contain_the_truth_68_percent_of_the_time(simulated, posterior):
    """Truths drawn from the prior the sampler uses: the posterior is calibrated exactly.
    Each parameter's coverage over DISTINCT = 40 galaxies has a binomial sigma of
    sqrt(0.68 * 0.32 / 40) = 7.4 %, so each must lie within 68 +- 22 % (3 sigma); the
    7 * 40 intervals pooled (sigma 2.8 % if independent; they are correlated within a
    galaxy) within 68 +- 10 %. (The 200-galaxy calibration on KiDS-like simulations with the
    full renderer is experiments/hmc_calibration.py.)"""
    truth = simulated[0]
    inside = _inside(truth, posterior_intervals(posterior.samples[:DISTINCT]))
    coverage = inside.mean(axis=0)
    print("HMC 68 % coverage per parameter", dict(zip(PHYSICAL, np.round(coverage, 3))))
    print("pooled", inside.mean())
    assert np.all(np.abs(coverage - 0.68) < 0.22), coverage
    assert abs(inside.mean() - 0.68) < 0.10, inside.mean()


@POSTERIOR_GROUP
def test_well_posed_posteriors_converge_without_divergences(posterior):
    health = convergence(posterior)
    assert np.all(np.isfinite(np.asarray(posterior.samples)))
    print("r-hat", np.round(health["rhat_max"], 3), "divergences", health["divergences"])
    # short chains (2 x 100 draws): r-hat itself scatters by a few percent
    assert np.median(health["rhat_max"]) < 1.05, health["rhat_max"]
    assert np.mean(health["rhat_max"] < 1.1) > 0.8, health["rhat_max"]
    assert np.mean(health["divergences"] == 0) > 0.85, health["divergences"]
    # a faint galaxy's banana-shaped (magnitude, r_eff, n) posterior mixes slowly at
    # max_tree_depth=4; most must not
    assert np.mean(health["ess_min"] > 30) > 0.9, health["ess_min"]


@POSTERIOR_GROUP
def test_arviz_summary_agrees_with_numpy(posterior):
    table = summary(posterior, galaxy=3)
    samples = np.asarray(posterior.samples[3])
    for name in ("magnitude", "r_eff", "n", "x0"):
        column = PHYSICAL.index(name)
        np.testing.assert_allclose(
            table.loc[f"{name}[3]", "mean"], samples[..., column].mean(), rtol=1e-3, atol=1e-3
        )
        np.testing.assert_allclose(
            table.loc[f"{name}[3]", "sd"], samples[..., column].std(ddof=1), rtol=0.01, atol=1e-3
        )
    data = to_inference_data(posterior)
    assert data.posterior["q"].shape == (CHAINS, DRAWS, COUNT)
    # r-hat against its definition (split chains, no rank normalisation) on a well-mixed galaxy
    import arviz as az

    z = np.asarray(posterior.coordinates[3, :, :, 0])
    halves = z.reshape(CHAINS * 2, DRAWS // 2)
    within = halves.var(axis=1, ddof=1).mean()
    between = (DRAWS // 2) * halves.mean(axis=1).var(ddof=1)
    length = DRAWS // 2
    rhat = np.sqrt(((length - 1) / length * within + between / length) / within)
    assert az.rhat(z, method="split") == pytest.approx(rhat, rel=1e-6)


@POSTERIOR_GROUP
def test_a_galaxy_draws_the_same_whatever_else_is_in_the_batch(posterior):
    """The repeated galaxies (same image, start and key) sit at other places of the batch,
    among other neighbours, and must draw exactly the same samples."""
    samples = np.asarray(posterior.samples)
    again = np.arange(REPEATED)[::-1]
    np.testing.assert_allclose(samples[DISTINCT:], samples[again], rtol=1e-9, atol=1e-9)


def test_log_jacobian_matches_autodiff_and_coordinates_round_trip():
    rng = np.random.default_rng(3)
    z = jnp.asarray(rng.normal(size=(6, 7)) * np.array([1.0, 0.5, 1.5, 0.8, 0.8, 0.1, 0.1]))
    z = z.at[:, 0].add(20.0)
    for point in z:
        jacobian = jax.jacfwd(sampling_physical)(point)
        _, log_det = jnp.linalg.slogdet(jacobian)
        assert float(log_jacobian(point)) == pytest.approx(float(log_det), abs=1e-9)
    np.testing.assert_allclose(
        sampling_from_unconstrained(unconstrained_from_sampling(z)), z, rtol=1e-12, atol=1e-12
    )
    # q = exp(-|v|^2): a prior uniform in (q, pa) is exp(-|v|^2) in v, so the density of
    # log_jacobian over the plane integrates to 180 degrees x (1 - 0) in q (midpoint rule)
    edge = np.linspace(-6.0, 6.0, 601)
    centres = 0.5 * (edge[1:] + edge[:-1])
    v1, v2 = np.meshgrid(centres, centres)
    points = jnp.zeros(v1.shape + (7,)).at[..., 3].set(v1).at[..., 4].set(v2)
    shape_jacobian = (
        np.exp(np.asarray(log_jacobian(points)))
        / np.exp(np.asarray(log_jacobian(jnp.zeros(7))))
        * (180.0 / np.pi)
    )
    area = (edge[1] - edge[0]) ** 2
    assert shape_jacobian.sum() * area == pytest.approx(180.0, rel=1e-6)


def test_periodic_position_angle_intervals():
    rng = np.random.default_rng(4)
    pa = (rng.normal(2.0, 5.0, size=(1, 2, 4000)) % 180.0)[..., None]
    samples = np.concatenate([np.zeros((1, 2, 4000, 4)), pa, np.zeros((1, 2, 4000, 2))], -1)
    intervals = posterior_intervals(samples)
    assert intervals["median"][0, 4] == pytest.approx(2.0, abs=0.5)
    assert intervals["lower"][0, 4] == pytest.approx(-3.0, abs=0.5)
    assert intervals["upper"][0, 4] == pytest.approx(7.0, abs=0.5)


@POSTERIOR_GROUP
def test_corner_plot_is_written(tmp_path, posterior, simulated):
    path = tmp_path / "corner.png"
    corner_plot(np.asarray(posterior.samples[0]), truths=simulated[0][0], path=path)
    assert path.stat().st_size > 1000
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


# The configuration of notebooks/fitting_tour.py's NUTS run (a KiDS cutout, a 25 x 25 PSF
# stamp, 2 chains of 100 + 100): in the same test worker (xdist group "kids_fit") one
# compilation serves both.
@pytest.mark.xdist_group("kids_fit")
def test_fit_with_hmc_gives_the_table_and_agrees_with_laplace_at_high_signal_to_noise():
    """One bright galaxy (S/N ~ 500) rendered by jaxgal with a pixelised PSF: its posterior
    is close to Gaussian, so the HMC intervals must match refinement's Laplace errors."""
    grid = jaxgal.PixelGrid((64, 64), PIXEL_SCALE)
    truth = jaxgal.Sersic(2e4, 0.5, 1.5, 0.7, 40.0, 0.02, -0.01)
    kernel = jaxgal.draw_psf(jaxgal.Moffat(0.7, 3.5), 25, PIXEL_SCALE)
    kernel = kernel / kernel.sum()
    clean = jaxgal.render(truth, grid, jaxgal.PixelPSF(kernel))
    noise = 5.0
    image = clean + noise * jax.random.normal(jax.random.key(11), clean.shape)
    with pytest.raises(ValueError, match="key"):
        jaxgal.fit(np.asarray(image), np.asarray(kernel), noise, method="hmc")
    table = jaxgal.fit(
        np.asarray(image),
        np.asarray(kernel),
        noise,
        method="hmc",
        zero_point=ZERO_POINT,
        pixel_scale=PIXEL_SCALE,
        key=5,
        num_warmup=100,
        num_samples=100,
        num_chains=2,
    )
    for name in ("magnitude", "r_eff", "n", "q", "pa", "x0", "y0", "flux"):
        for suffix in ("", "_err", "_lo", "_hi", "_refined", "_refined_err"):
            assert name + suffix in table.colnames
    for name in ("rhat_max", "ess_min", "divergences", "flags", "chi2"):
        assert name in table.colnames
    row = table[0]
    print({name: (row[name + "_err"], row[name + "_refined_err"]) for name in PHYSICAL})
    for name in ("magnitude", "r_eff", "n", "q", "x0", "y0"):
        # 200 correlated draws estimate a width to ~10-15 %
        assert row[name + "_err"] == pytest.approx(row[name + "_refined_err"], rel=0.4)
        assert abs(row[name] - row[name + "_refined"]) < row[name + "_refined_err"]
    # 2 chains of 100 draws: r-hat scatters; flag 4 must say what the columns say
    assert row["rhat_max"] < 1.2 and row["divergences"] == 0, (row["rhat_max"], row["divergences"])
    suspect = row["rhat_max"] > 1.05 or row["divergences"] > 0
    assert row["flags"] == (4 if suspect else 0)


def test_a_prior_with_hard_edges_bounds_the_sampler():
    """Faint galaxies (S/N ~ 10) and a centre prior of a tenth of a pixel: the posterior
    fills the prior's box and presses on its edges. In the coordinates `within_prior` gives
    (each interval support mapped by a logit), NUTS meets no wall of zero density there: no
    more than 1 % of the draws diverge, and every draw is inside the supports."""
    from jaxgal.fitting.models import SERSIC

    prior = dict(
        PRIOR,
        n=dist.Uniform(0.5, 6.2),
        q=dist.Uniform(0.2, 1.0),
        x0=dist.Uniform(-0.02, 0.02),
        y0=dist.Uniform(-0.02, 0.02),
    )
    model = SERSIC.within_prior(prior)
    assert dict(model.bounds)["x0"] == pytest.approx((-0.02, 0.02))
    count = 4
    truth = np.stack(
        [np.full(count, 22.5), np.full(count, 0.6), np.linspace(1.0, 4.0, count),
         np.linspace(0.3, 0.9, count), np.linspace(10.0, 150.0, count),
         np.linspace(-0.015, 0.015, count), np.linspace(0.015, -0.015, count)], axis=-1
    )  # fmt: skip
    galaxies = jaxgal.Sersic(
        jaxgal.magnitude_to_flux(jnp.asarray(truth[:, 0]), ZERO_POINT),
        *(jnp.asarray(truth[:, i]) for i in range(1, 7)),
    )
    grid = jaxgal.PixelGrid(SHAPE, PIXEL_SCALE)
    clean = jax.vmap(lambda galaxy: centre_sampled(galaxy, grid, None))(galaxies)
    images = clean + SIGMA * jax.random.normal(jax.random.key(3), clean.shape)
    result = sample_posterior(
        images, SIGMA, None, model.unconstrained(jnp.asarray(truth)), PIXEL_SCALE, ZERO_POINT,
        jax.random.key(4), prior=prior, model=model, num_warmup=WARMUP, num_samples=DRAWS,
        num_chains=CHAINS, max_tree_depth=4, forward=centre_sampled,
    )  # fmt: skip
    samples = np.asarray(result.samples)
    # (with the prior's edges as walls, SERSIC's unbounded coordinates: 114-177 of each
    # galaxy's 200 draws diverge)
    print("divergences", np.asarray(result.divergences))
    assert np.all(np.asarray(result.divergences) <= 0.01 * CHAINS * DRAWS)
    for name, distribution in prior.items():
        column = samples[..., model.names.index(name)]
        assert np.all(np.asarray(distribution.support(jnp.asarray(column)))), name
    # the centre's posterior is about as wide as the prior's box: its edges are reached
    for column in (5, 6):
        assert samples[..., column].min() < -0.018 and samples[..., column].max() > 0.018
