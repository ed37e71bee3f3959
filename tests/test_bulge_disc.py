"""Bulge + disc and constrained models: fits of GalSim bulge + disc galaxies (a Sersic
bulge and an exponential disc, misaligned, of different shapes) recover the truths within
their Laplace errors; fixed parameters stay fixed, bounded ones inside their bounds, freed
centres apart; the coordinates' Jacobian against autodiff; HMC's widths against the
Laplace errors; bad models named."""

import galsim
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgal
from jaxgal.fitting import BulgeDisc, SersicModel, refine, sample_posterior
from jaxgal.fitting.api import FLAG_AT_BOUND
from jaxgal.fitting.diagnostics import convergence
from jaxgal.fitting.fisher import physical_covariance
from jaxgal.fitting.hmc import posterior_intervals

ZERO_POINT, PIXEL_SCALE, SHAPE, SIGMA = 30.0, 0.2, (40, 40), 2.0
# de Vaucouleurs bulges (n = 4, held fixed in the fit, as GaLNets II and Simard et al. 2011
# do) and exponential discs, misaligned; the fourth galaxy's bulge sits off the disc's
# centre, the fifth's disc is thinner (q = 0.12) than the fit's bound on disc_q allows
TRUTHS = [
    dict(bulge_magnitude=20.5, bulge_r_eff=0.4, bulge_q=0.8, bulge_pa=30.0,
         disc_magnitude=19.8, disc_r_eff=1.5, disc_q=0.4, disc_pa=50.0, x0=0.05, y0=-0.03),
    dict(bulge_magnitude=21.0, bulge_r_eff=0.3, bulge_q=0.9, bulge_pa=100.0,
         disc_magnitude=20.0, disc_r_eff=1.2, disc_q=0.6, disc_pa=140.0, x0=-0.04, y0=0.02),
    dict(bulge_magnitude=19.8, bulge_r_eff=0.6, bulge_q=0.7, bulge_pa=160.0,
         disc_magnitude=20.5, disc_r_eff=1.3, disc_q=0.3, disc_pa=10.0, x0=0.0, y0=0.06),
    dict(bulge_magnitude=20.2, bulge_r_eff=0.4, bulge_q=0.8, bulge_pa=70.0,
         disc_magnitude=19.9, disc_r_eff=1.4, disc_q=0.5, disc_pa=120.0, x0=0.02, y0=0.0),
    dict(bulge_magnitude=20.5, bulge_r_eff=0.4, bulge_q=0.8, bulge_pa=30.0,
         disc_magnitude=19.8, disc_r_eff=1.5, disc_q=0.12, disc_pa=50.0, x0=0.0, y0=0.0),
]  # fmt: skip
BULGE_SHIFT = (0.12, -0.06)  # of the fourth galaxy's bulge, arcsec
MODEL = BulgeDisc(shared_centre=False, fixed={"bulge_n": 4.0}, bounds={"disc_q": (0.2, 1.0)})
PSF = galsim.Moffat(beta=3.5, fwhm=0.7)
pytestmark = pytest.mark.xdist_group("bulge_disc")


def _flux(magnitude):
    return 10.0 ** (-0.4 * (magnitude - ZERO_POINT))


def galsim_image(truth, rng, bulge_shift=(0.0, 0.0)):
    """GalSim's bulge + disc, convolved with the Moffat and the pixel, with noise."""
    bulge = galsim.DeVaucouleurs(
        half_light_radius=truth["bulge_r_eff"], flux=_flux(truth["bulge_magnitude"])
    ).shear(q=truth["bulge_q"], beta=truth["bulge_pa"] * galsim.degrees)
    disc = galsim.Exponential(
        half_light_radius=truth["disc_r_eff"], flux=_flux(truth["disc_magnitude"])
    ).shear(q=truth["disc_q"], beta=truth["disc_pa"] * galsim.degrees)
    galaxy = bulge.shift(*bulge_shift) + disc
    galaxy = galsim.Convolve(galaxy.shift(truth["x0"], truth["y0"]), PSF)
    image = galaxy.drawImage(nx=SHAPE[1], ny=SHAPE[0], scale=PIXEL_SCALE).array
    return image + SIGMA * rng.standard_normal(image.shape)


def expected(index):
    """The truth in MODEL's parameters (each component's centre)."""
    truth = dict(TRUTHS[index], bulge_n=4.0)
    shift = BULGE_SHIFT if index == 3 else (0.0, 0.0)
    truth["bulge_x0"], truth["bulge_y0"] = truth["x0"] + shift[0], truth["y0"] + shift[1]
    truth["disc_x0"], truth["disc_y0"] = truth.pop("x0"), truth.pop("y0")
    return truth


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(20261202)
    images = np.stack(
        [
            galsim_image(truth, rng, BULGE_SHIFT if index == 3 else (0.0, 0.0))
            for index, truth in enumerate(TRUTHS)
        ]
    )
    kernel = PSF.drawImage(nx=21, ny=21, scale=PIXEL_SCALE).array
    table = jaxgal.fit(
        images,
        kernel / kernel.sum(),
        SIGMA,
        method="refine",
        model=MODEL,
        zero_point=ZERO_POINT,
        pixel_scale=PIXEL_SCALE,
    )
    return table


def test_bulge_disc_recovers_galsim_galaxies(fitted):
    table = fitted
    assert list(table["converged"]) == [True] * len(TRUTHS)
    assert np.all(np.abs(table["reduced_chi2"][:4] - 1.0) < 0.1)  # the fifth cannot fit
    pulls = []
    for index in range(4):
        row, truth = table[index], expected(index)
        assert row["flags"] == 0
        assert row["bulge_n"] == 4.0 and row["bulge_n_err"] == 0.0  # fixed
        for name, value in truth.items():
            if name != "bulge_n":
                assert row[name + "_err"] > 0, name
                pulls.append((row[name] - value) / row[name + "_err"])
        # derived: the total magnitude and the bulge-to-total ratio
        bulge, disc = _flux(truth["bulge_magnitude"]), _flux(truth["disc_magnitude"])
        total = ZERO_POINT - 2.5 * np.log10(bulge + disc)
        assert abs(row["magnitude"] - total) < 4 * row["magnitude_err"]
        assert abs(row["bt"] - bulge / (bulge + disc)) < 4 * row["bt_err"]
        assert row["bulge_flux"] == pytest.approx(_flux(row["bulge_magnitude"]), rel=1e-9)
    pulls = np.asarray(pulls)
    print("bulge + disc pulls", np.round(pulls, 2))
    # honest errors: no pull beyond 4, and their scatter near 1 (48 pulls)
    assert np.abs(pulls).max() < 4.0
    assert 0.6 < np.sqrt(np.mean(pulls**2)) < 1.5
    # the fourth galaxy's bulge is measured off its disc's centre, many errors from zero
    row = table[3]
    offset = row["bulge_x0"] - row["disc_x0"]
    assert offset / np.hypot(row["bulge_x0_err"], row["disc_x0_err"]) > 5


def test_a_parameter_pressing_its_bound_is_held_and_flagged(fitted):
    row = fitted[4]  # disc q 0.12, bounded to [0.2, 1]
    assert row["converged"]
    assert 0.2 <= row["disc_q"] < 0.2002 and row["disc_q_err"] == 0.0
    assert row["flags"] == FLAG_AT_BOUND


def test_fixed_and_bounded_parameters_of_one_sersic():
    """A Sersic fitted with pa fixed at a wrong value and n bounded below its truth: the fit
    never moves pa, holds n on its bound, and converges."""
    grid = jaxgal.PixelGrid((32, 32), PIXEL_SCALE)
    truth = jaxgal.Sersic(_flux(20.0), 0.8, 2.5, 0.5, 40.0, 0.02, -0.01)
    image = jaxgal.render(truth, grid, jaxgal.Moffat(0.7, 3.5))[None]
    start = jnp.array([[20.3, 1.0, 2.0, 0.7, 0.0, 0.0, 0.0]])
    psfs = jaxgal.Moffat(jnp.array([0.7]), jnp.array([3.5]))
    model = SersicModel(fixed={"pa": 90.0}, bounds={"n": (1.0, 2.0)})
    wrong = refine(image, 1.0, psfs, start, PIXEL_SCALE, ZERO_POINT, model=model)
    assert bool(wrong.converged[0])
    assert float(wrong.parameters[0, 4]) == 90.0 and float(wrong.errors[0, 4]) == 0.0
    assert 1.9997 < float(wrong.parameters[0, 2]) <= 2.0 and float(wrong.errors[0, 2]) == 0.0
    assert bool(model.at_bound(wrong.coordinates)[0, 2])


@pytest.mark.parametrize(
    "model",
    [
        BulgeDisc(),
        BulgeDisc(shared_centre=False, fixed={"bulge_n": 4.0}, bounds={"disc_pa": (10, 50)}),
        SersicModel(fixed={"pa": 30.0}, bounds={"r_eff": (0.1, 2.0)}),
        # q bounded below only: the shape pair stays, on (0.2, 1]
        SersicModel(bounds={"q": (0.2, 1.0), "x0": (-0.1, 0.1), "magnitude": (17.0, 21.5)}),
    ],
)
def test_coordinates_round_trip_and_log_jacobian_against_autodiff(model):
    free = jnp.array([i for i, name in enumerate(model.names) if name not in dict(model.fixed)])

    def free_physical(z):
        return model.physical(model.from_sampling(z))[free]

    for seed in range(5):
        u = jax.random.normal(jax.random.key(seed), (model.size,))
        values = model.physical(u)
        np.testing.assert_allclose(model.unconstrained(values), u, atol=1e-10)
        z = model.to_sampling(u)
        np.testing.assert_allclose(model.from_sampling(z), u, atol=1e-12)
        jacobian = jax.jacfwd(free_physical)(z)
        _, log_det = jnp.linalg.slogdet(jacobian)
        assert float(model.log_jacobian(z)) == pytest.approx(float(log_det), abs=1e-9)
        for name, (low, high) in model.bounds:
            value = float(values[model.names.index(name)])
            assert low < value <= high, (name, value)


def test_bad_models_are_named():
    with pytest.raises(ValueError, match="unknown parameter 'disc_n'"):
        BulgeDisc(fixed={"disc_n": 2.0})
    with pytest.raises(ValueError, match="low < high"):
        BulgeDisc(bounds={"bulge_r_eff": (1.0, 0.5)})
    with pytest.raises(ValueError, match=r"bulge_n value 9.0 is outside \[0.3, 8.0\]"):
        BulgeDisc(fixed={"bulge_n": 9.0})
    with pytest.raises(ValueError, match="q bound 1.5"):
        SersicModel(bounds={"q": (0.5, 1.5)})
    with pytest.raises(ValueError, match="both fixed and bounded"):
        SersicModel(fixed={"n": 4.0}, bounds={"n": (1.0, 5.0)})
    with pytest.raises(ValueError, match="method 'cnn'"):
        jaxgal.fit(np.zeros((1, 64, 64)), np.ones((5, 5)), 1.0, method="cnn", model=BulgeDisc())


def centre_sampled(profiles, grid, psf):
    """A cheap forward model for the sampler's test: the profiles at the pixel centres."""
    x, y = jnp.meshgrid(grid.x_centres(), grid.y_centres())
    return sum(p.surface_brightness(x, y) for p in profiles) * grid.pixel_scale**2


def test_hmc_of_a_bulge_disc_matches_its_laplace_approximation():
    """NUTS on a bright bulge + disc (the default model: free bulge n, shared centre),
    simulated and sampled with a centre-sampled forward model (cheap to compile): every
    parameter's 16-84 % half-width within 35 % of the Laplace error (J^T J at the truth,
    autodiff: a bright galaxy's posterior is near Gaussian), the truth inside 4 of them,
    chains mixed, no divergence."""
    model = BulgeDisc()
    grid = jaxgal.PixelGrid((28, 28), PIXEL_SCALE)
    truth = np.array([20.0, 0.35, 3.0, 0.8, 30.0, 19.6, 1.0, 0.45, 60.0, 0.03, -0.02])
    u = model.unconstrained(truth[None])[0]

    def scaled_model(u):
        profiles = model.profiles(model.physical(u), ZERO_POINT)
        return centre_sampled(profiles, grid, None).ravel() / SIGMA

    clean = centre_sampled(model.profiles(jnp.asarray(truth), ZERO_POINT), grid, None)
    image = clean + SIGMA * np.random.default_rng(5).standard_normal(clean.shape)
    jacobian = jax.jacfwd(scaled_model)(u)
    laplace = np.sqrt(np.diagonal(physical_covariance(jacobian, u, model)))
    posterior = sample_posterior(
        image[None], SIGMA, None, u[None], PIXEL_SCALE, ZERO_POINT, jax.random.key(3),
        num_warmup=200, num_samples=200, num_chains=2, max_tree_depth=5,
        forward=centre_sampled, model=model,
    )  # fmt: skip
    intervals = posterior_intervals(posterior.samples, model.periodic)
    widths = 0.5 * (intervals["upper"][0] - intervals["lower"][0])
    ratio = widths / laplace
    print("HMC / Laplace widths", dict(zip(model.names, np.round(ratio, 2), strict=True)))
    assert np.all((ratio > 0.65) & (ratio < 1.35)), ratio
    assert np.all(np.abs(intervals["median"][0] - truth) < 4 * widths)
    health = convergence(posterior, model)
    assert health["rhat_max"][0] < 1.05 and health["divergences"][0] == 0
