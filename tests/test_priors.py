"""The GaLNet galaxy prior: ranges, distributions and densities against analytic ones."""

import jax
import numpy as np
import pytest
from scipy import stats

from jaxgal.simulate import SersicPrior
from jaxgal.simulate.priors import PARAMETERS

PIXEL = 0.2


def test_samples_stay_in_their_ranges_and_follow_the_key():
    prior = SersicPrior()
    galaxies, values = prior.sample(jax.random.key(1), 5000, PIXEL, 30.0)
    for name, (low, high) in [
        ("magnitude", prior.magnitude),
        ("r_eff", prior.r_eff),
        ("n", prior.n),
        ("q", prior.q),
        ("pa", prior.pa),
        ("x0", (-0.5 * PIXEL, 0.5 * PIXEL)),
        ("y0", (-0.5 * PIXEL, 0.5 * PIXEL)),
    ]:
        drawn = np.asarray(values[name])
        assert drawn.shape == (5000,)
        assert drawn.min() >= low and drawn.max() <= high, name
        # the draws fill the range
        assert drawn.min() < low + 0.01 * (high - low) and drawn.max() > high - 0.01 * (high - low)
    np.testing.assert_allclose(
        np.asarray(galaxies.flux),
        10 ** (-0.4 * (np.asarray(values["magnitude"]) - 30.0)),
        rtol=1e-5,
    )
    _, again = prior.sample(jax.random.key(1), 5000, PIXEL, 30.0)
    _, other = prior.sample(jax.random.key(2), 5000, PIXEL, 30.0)
    for name in PARAMETERS:
        np.testing.assert_array_equal(np.asarray(values[name]), np.asarray(again[name]))
        assert not np.allclose(np.asarray(values[name]), np.asarray(other[name]))


def test_r_eff_is_log_uniform_and_n_uniform():
    prior = SersicPrior()
    _, values = prior.sample(jax.random.key(3), 20000, PIXEL, 30.0)
    log_r = np.log(np.asarray(values["r_eff"], dtype=float))
    low, high = np.log(prior.r_eff[0]), np.log(prior.r_eff[1])
    assert stats.kstest(log_r, stats.uniform(low, high - low).cdf).pvalue > 1e-3
    n = np.asarray(values["n"], dtype=float)
    assert stats.kstest(n, stats.uniform(0.5, 5.7).cdf).pvalue > 1e-3


def test_log_prob_is_the_analytic_density():
    prior = SersicPrior(magnitude=(18.0, 22.0), r_eff=(0.1, 5.0), n=(0.5, 4.0), q=(0.3, 1.0))
    point = dict(magnitude=19.0, r_eff=0.7, n=2.0, q=0.5, pa=30.0, x0=0.01, y0=-0.02)
    expected = (
        -np.log(4.0)
        - np.log(0.7)
        - np.log(np.log(50.0))
        - np.log(3.5)
        - np.log(0.7)
        - np.log(180.0)
        - 2 * np.log(PIXEL)
    )
    assert float(prior.log_prob(point, PIXEL)) == pytest.approx(expected, rel=1e-5)
    assert float(prior.log_prob({**point, "q": 0.2}, PIXEL)) == -np.inf
    assert float(prior.log_prob({**point, "x0": 0.2}, PIXEL)) == -np.inf


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(n=(0.2, 4.0)), "n range"),
        (dict(q=(0.0, 1.0)), "q range"),
        (dict(q=(0.5, 1.2)), "q range"),
        (dict(r_eff=(0.0, 1.0)), "r_eff range"),
        (dict(magnitude=(22.0, 18.0)), "magnitude range must have low < high"),
        (dict(centre=0.0), "centre"),
    ],
)
def test_bad_ranges_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SersicPrior(**kwargs)
