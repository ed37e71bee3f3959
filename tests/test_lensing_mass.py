"""SIE and external shear against lenstronomy, finite differences and invariants.

The reference is lenstronomy's `EPL` with gamma = 2 (its deflection is the closed form
through scipy's hypergeometric function, its Hessian analytic), not its `SIE`, whose
second derivatives are finite differences good to ~1e-4. At q = 1 exactly (e1 = e2 = 0)
the EPL is the SIS and lenstronomy evaluates it without trouble.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from lensing_reference import sie_epl_keywords
from lenstronomy.LensModel.lens_model import LensModel

import jaxgal
from jaxgal import lensing
from jaxgal.lensing.sie import CENTRE_RADIUS

pytestmark = pytest.mark.xdist_group("lensing_mass")  # the tests share their compilations

AXIS_RATIOS = [0.2, 0.35, 0.5, 0.7, 0.9, 0.99, 0.999, 0.9999, 1.0]
# (theta_e, pa, x0, y0, gamma1, gamma2), one lens per axis ratio, cycled
LENSES = [
    (1.3, 37.0, 0.1, -0.05, 0.04, -0.03),
    (0.8, 0.0, 0.0, 0.0, 0.0, 0.0),
    (2.4, 121.5, -0.27, 0.18, -0.08, 0.05),
    (1.7, 90.0, 0.05, 0.3, 0.02, 0.09),
]
NAMES = ("theta_e", "q", "pa", "x0", "y0", "gamma1", "gamma2")
QUANTITIES = ("deflection", "potential", "convergence", "shear", "magnification")


def _models(parameters):
    """The SIE and the shear (about the lens centre) from the 7 parameters of NAMES."""
    theta_e, q, pa, x0, y0, gamma1, gamma2 = (parameters[..., i] for i in range(7))
    return jaxgal.SIE(theta_e, q, pa, x0, y0), jaxgal.ExternalShear(gamma1, gamma2, x0, y0)


@jax.jit
def _quantities(parameters, x, y):
    """Every quantity of SIE + shear and of the SIE alone; one compilation per dtype."""
    sie, external = _models(parameters)
    together = {name: getattr(lensing, name)((sie, external), x, y) for name in QUANTITIES}
    alone = {name: getattr(sie, name)(x, y) for name in QUANTITIES}
    return together, alone


def _lenstronomy(parameters, x, y):
    """The same quantities from lenstronomy (EPL gamma = 2 + SHEAR), in float64."""
    theta_e, q, pa, x0, y0, gamma1, gamma2 = np.asarray(parameters, float)
    epl = sie_epl_keywords(theta_e, q, pa, x0, y0)
    shear = dict(gamma1=gamma1, gamma2=gamma2, ra_0=x0, dec_0=y0)
    results = []
    for model, keywords in (
        (LensModel(["EPL", "SHEAR"]), [epl, shear]),
        (LensModel(["EPL"]), [epl]),
    ):
        results.append(
            dict(
                deflection=model.alpha(x, y, keywords),
                potential=model.potential(x, y, keywords),
                convergence=model.kappa(x, y, keywords),
                shear=model.gamma(x, y, keywords),
                magnification=model.magnification(x, y, keywords),
            )
        )
    return results


def _points(theta_e, x0, y0, dtype=np.float64):
    """Log-spaced radii 1e-6 .. 10 theta_e around the centre, at 36 angles."""
    radius, angle = np.meshgrid(
        np.geomspace(1e-6, 10.0, 40) * theta_e, np.linspace(0, 2 * np.pi, 37)[:-1] + 0.01
    )
    x = (x0 + radius * np.cos(angle)).ravel().astype(dtype)
    y = (y0 + radius * np.sin(angle)).ravel().astype(dtype)
    return x, y


def _relative_differences(ours, reference, parameters, radius, gamma_external):
    """max |ours - reference| / max(|reference|, scale) for each quantity.

    A scale is the size of the terms a quantity is summed from, which bounds the rounding
    of either code where the sum itself passes through 0: the deflection's components are
    made of the SIE's (size theta_e) and the shear's (size |gamma| r); the potential of
    theta_e r and |gamma| r^2 / 2; the shear's components of kappa and |gamma|. The
    convergence and the magnification are compared purely relatively.
    """
    theta_e = float(parameters[0])
    kappa = np.asarray(reference["convergence"])
    scales = dict(
        deflection=theta_e + gamma_external * radius,
        potential=theta_e * radius + gamma_external * radius**2 / 2,
        convergence=0.0,
        shear=kappa + gamma_external,
        magnification=0.0,
    )
    differences = {}
    for name in QUANTITIES:
        ours_value = np.asarray(ours[name], float)
        reference_value = np.asarray(reference[name], float)
        floor = np.maximum(np.abs(reference_value), scales[name])
        differences[name] = float(np.max(np.abs(ours_value - reference_value) / floor))
    return differences


def _case(index, q):
    theta_e, pa, x0, y0, gamma1, gamma2 = LENSES[index % len(LENSES)]
    return np.array([theta_e, q, pa, x0, y0, gamma1, gamma2])


@pytest.mark.parametrize("index, q", list(enumerate(AXIS_RATIOS)))
def test_matches_lenstronomy_in_float64(index, q):
    parameters = _case(index, q)
    x, y = _points(parameters[0], parameters[3], parameters[4])
    radius = np.hypot(x - parameters[3], y - parameters[4])
    together, alone = _quantities(jnp.asarray(parameters), jnp.asarray(x), jnp.asarray(y))
    reference_together, reference_alone = _lenstronomy(parameters, x, y)
    gamma_external = np.hypot(parameters[5], parameters[6])
    for ours, reference, external in (
        (together, reference_together, gamma_external),
        (alone, reference_alone, 0.0),
    ):
        # lenstronomy's magnification, 1 / ((1 - f_xx)(1 - f_yy) - f_xy^2), loses 1e-16 kappa
        # relative near the centre (5e-10 at 1e-6 theta_e), well inside the tolerance
        differences = _relative_differences(ours, reference, parameters, radius, external)
        assert max(differences.values()) <= 1e-6, differences


@pytest.mark.parametrize("index, q", list(enumerate(AXIS_RATIOS)))
def test_matches_lenstronomy_in_float32(index, q):
    # lenstronomy sees the float32 values themselves (as float64), so what is measured is the
    # error of the float32 arithmetic, not the rounding of the inputs
    parameters = _case(index, q).astype(np.float32)
    x, y = _points(parameters[0], parameters[3], parameters[4], np.float32)
    radius = np.hypot(x - parameters[3].astype(float), y - parameters[4].astype(float))
    together, alone = _quantities(jnp.asarray(parameters), jnp.asarray(x), jnp.asarray(y))
    for value in jax.tree_util.tree_leaves((together, alone)):
        assert value.dtype == jnp.float32
    reference_together, reference_alone = _lenstronomy(
        parameters.astype(float), x.astype(float), y.astype(float)
    )
    gamma_external = float(np.hypot(parameters[5], parameters[6]))
    for ours, reference, external in (
        (together, reference_together, gamma_external),
        (alone, reference_alone, 0.0),
    ):
        differences = _relative_differences(ours, reference, parameters, radius, external)
        # The magnification is ill-conditioned near a critical curve: det(I - H), summed from
        # terms of size 1 + 2 kappa, carries an absolute float32 error of a few 1e-7 of them,
        # which is a relative error |magnification| times larger in the magnification. So
        # compare the determinant relative to the size of its terms instead.
        determinant = 1.0 / np.asarray(ours["magnification"], float)
        reference_determinant = 1.0 / np.asarray(reference["magnification"])
        terms = 1.0 + 2.0 * np.asarray(reference["convergence"]) + external
        differences["magnification"] = float(
            np.max(np.abs(determinant - reference_determinant) / terms)
        )
        assert max(differences.values()) <= 1e-4, differences


def test_values_at_the_centre():
    sie = jaxgal.SIE(1.5, 0.6, 30.0, 0.2, -0.1)
    x, y = jnp.asarray([0.2]), jnp.asarray([-0.1])
    assert np.all(np.asarray(sie.deflection(x, y)) == 0.0)
    assert float(sie.potential(x, y)[0]) == 0.0
    # kappa and the shear: their values at CENTRE_RADIUS along the major axis
    angle = np.deg2rad(30.0)
    x_near = 0.2 + CENTRE_RADIUS * np.cos(angle)
    y_near = -0.1 + CENTRE_RADIUS * np.sin(angle)
    kappa = 1.5 / (2 * np.sqrt(0.6) * CENTRE_RADIUS)
    assert float(sie.convergence(x, y)[0]) == pytest.approx(kappa, rel=1e-12)
    gamma1, gamma2 = sie.shear(x, y)
    assert float(gamma1[0]) == pytest.approx(-kappa * np.cos(2 * angle), rel=1e-12)
    assert float(gamma2[0]) == pytest.approx(-kappa * np.sin(2 * angle), rel=1e-12)
    assert float(sie.magnification(x, y)[0]) == pytest.approx(1 / (1 - 2 * kappa), rel=1e-12)
    near = sie.convergence(jnp.asarray([x_near]), jnp.asarray([y_near]))
    assert float(near[0]) == pytest.approx(kappa, rel=1e-3)


def _deflection_and_potential(parameters, x, y):
    """alpha_x, alpha_y and the potential of SIE + shear at the points (one vector)."""
    models = _models(parameters)
    alpha_x, alpha_y = lensing.deflection(models, x, y)
    return jnp.concatenate([alpha_x, alpha_y, lensing.potential(models, x, y)])


_JACOBIAN = jax.jit(jax.jacrev(_deflection_and_potential))
_BATCHED = jax.jit(jax.vmap(_deflection_and_potential, in_axes=(0, None, None)))


@pytest.mark.parametrize("q", [1.0, 0.999, 0.9999, 0.5, 0.25])
def test_gradients_match_finite_differences(q):
    parameters = np.array([1.4, q, 63.0, 0.12, -0.07, 0.05, -0.04])
    centre = parameters[3:5]
    # a point 1e-6 arcsec from the centre, inside, on and outside the Einstein ring
    offsets = np.array([[1e-6, 0.3e-6], [0.3, -0.2], [1.1, 0.7], [-2.0, 3.5]])
    x, y = jnp.asarray(centre[0] + offsets[:, 0]), jnp.asarray(centre[1] + offsets[:, 1])
    jacobian = np.asarray(_JACOBIAN(jnp.asarray(parameters), x, y))
    # Central differences; the lens is built from traced values, so q = 1 + step is allowed
    # here (the formula is analytic through q = 1). The centre's step is 1e-10 for the point
    # 1e-6 from it (truncation ~ (step / r)^2 / 6) and 1e-6 for the others (rounding ~
    # 1e-16 |value| / step).
    finite_differences = []
    for centre_step in (1e-10, 1e-6):
        steps = np.array([1e-6, 1e-6, 1e-4, centre_step, centre_step, 1e-6, 1e-6])
        shifted = parameters + np.concatenate([np.diag(steps), -np.diag(steps)])
        values = np.asarray(_BATCHED(jnp.asarray(shifted), x, y))
        # the steps as represented (x0 + 1e-10 rounds the step by 1e-7 of itself)
        represented = np.diag(shifted[:7] - shifted[7:])[:, None]
        finite_differences.append(((values[:7] - values[7:]) / represented).T)
    # rows: alpha_x, alpha_y, potential at each of the 4 points; row 4k is the near point
    near = (np.arange(jacobian.shape[0]) % len(offsets) == 0)[:, None]
    finite_differences = np.where(near, *finite_differences)
    scale = np.max(np.abs(finite_differences), axis=1, keepdims=True)
    error = np.abs(jacobian - finite_differences) / scale
    assert np.max(error) <= 1e-7, np.max(error, axis=0)


# The seed's lens population: theta_e 1 .. 2.5 arcsec, q 0.3 .. 1, pa 0 .. 180 degrees,
# centre normal(0, 0.15) truncated to +-0.3 arcsec, |gamma_external| <= 0.1.
_PROPERTY_OFFSETS = np.array(
    [[0.0, 0.0], [1e-7, 0.0], [0.0, -1e-6], [1.0, 1.0], [0.7, -0.3], [-2.5, 0.4], [9.0, -7.0]]
)


@jax.jit
def _values_and_gradients(parameters):
    offsets = jnp.asarray(_PROPERTY_OFFSETS, parameters.dtype)
    x, y = parameters[3] + offsets[:, 0], parameters[4] + offsets[:, 1]

    def everything(parameters):
        models = _models(parameters)
        return jnp.concatenate(
            [
                *lensing.deflection(models, x, y),
                lensing.potential(models, x, y),
                lensing.convergence(models, x, y),
                *lensing.shear(models, x, y),
                lensing.magnification(models, x, y),
            ]
        )

    # reverse mode, as jax.grad: a NaN in a discarded branch of a where shows only there
    return everything(parameters), jax.jacrev(everything)(parameters)


# the centre (the first point) at q = 1 exactly, just below 1, and far from it
@example(1.4, 1.0, 63.0, 0.12, -0.07, 0.064, 0.3)
@example(1.4, 0.999, 63.0, 0.12, -0.07, 0.064, 0.3)
@example(1.4, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0)
@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    theta_e=st.floats(1.0, 2.5),
    q=st.one_of(st.floats(0.3, 1.0), st.just(1.0)),
    pa=st.floats(0.0, 180.0),
    x0=st.floats(-0.3, 0.3),
    y0=st.floats(-0.3, 0.3),
    shear_magnitude=st.floats(0.0, 0.1),
    shear_angle=st.floats(0.0, np.pi),
)
def test_no_nan_over_the_lens_population(theta_e, q, pa, x0, y0, shear_magnitude, shear_angle):
    gamma1 = shear_magnitude * np.cos(2 * shear_angle)
    gamma2 = shear_magnitude * np.sin(2 * shear_angle)
    parameters = jnp.asarray([theta_e, q, pa, x0, y0, gamma1, gamma2])
    for dtype in (jnp.float64, jnp.float32):
        values, gradients = _values_and_gradients(parameters.astype(dtype))
        assert np.all(np.isfinite(np.asarray(values))), (dtype, values)
        assert np.all(np.isfinite(np.asarray(gradients))), (dtype, gradients)


def test_batch_of_lenses_by_vmap_equals_a_loop():
    parameters = jnp.asarray([_case(index, q) for index, q in enumerate(AXIS_RATIOS)])
    x, y = jnp.asarray([0.3, -1.2, 2.0]), jnp.asarray([0.5, 0.1, -3.0])
    batched = np.asarray(_BATCHED(parameters, x, y))
    one_lens = jax.jit(_deflection_and_potential)
    for index, row in enumerate(parameters):
        expected = np.asarray(one_lens(row, x, y))
        np.testing.assert_allclose(batched[index], expected, rtol=1e-13, atol=1e-15)


def test_sequences_add_and_one_model_is_its_own_total():
    sie, external = _models(jnp.asarray(_case(2, 0.6)))
    x, y = jnp.asarray([0.3, -1.2]), jnp.asarray([0.5, 0.1])
    for name in ("deflection", "potential", "hessian", "convergence", "shear"):
        total = getattr(lensing, name)([sie, external], x, y)
        parts = [getattr(model, name)(x, y) for model in (sie, external)]
        np.testing.assert_allclose(
            np.asarray(total), np.asarray(parts[0]) + np.asarray(parts[1]), rtol=1e-14
        )
        np.testing.assert_array_equal(
            np.asarray(getattr(lensing, name)(sie, x, y)), np.asarray(parts[0])
        )
    # one model's magnification is 1 / (1 - 2 kappa) for the SIE and 1 / (1 - |gamma|^2)
    kappa = np.asarray(sie.convergence(x, y))
    np.testing.assert_allclose(np.asarray(sie.magnification(x, y)), 1 / (1 - 2 * kappa))
    gamma_squared = float(external.gamma1**2 + external.gamma2**2)
    np.testing.assert_allclose(np.asarray(external.magnification(x, y)), 1 / (1 - gamma_squared))
    with pytest.raises(ValueError, match="empty"):
        lensing.deflection([], x, y)


GOOD_SIE = dict(theta_e=1.2, q=0.7, pa=20.0, x0=0.1, y0=-0.1)
BAD_SIE = [
    ("theta_e", 0.0),
    ("theta_e", -1.0),
    ("q", 0.0),
    ("q", -0.3),
    ("q", 1.0001),
    ("pa", np.inf),
    ("x0", np.nan),
    ("y0", np.inf),
]
GOOD_SHEAR = dict(gamma1=0.05, gamma2=-0.02, x0=0.0, y0=0.0)
BAD_SHEAR = [
    ("gamma1", np.nan),
    ("gamma2", np.inf),
    ("gamma1", 1.0),
    ("gamma2", -1.5),
    ("x0", np.nan),
]


@pytest.mark.parametrize("name, value", BAD_SIE)
def test_sie_rejects_at_construction(name, value):
    with pytest.raises(ValueError, match=f"SIE {name}"):
        jaxgal.SIE(**{**GOOD_SIE, name: value})


@pytest.mark.parametrize("name, value", BAD_SHEAR)
def test_shear_rejects_at_construction(name, value):
    message = f"ExternalShear {name}" if np.isnan(value) or np.isinf(value) else "\\|gamma\\|"
    with pytest.raises(ValueError, match=message):
        jaxgal.ExternalShear(**{**GOOD_SHEAR, name: value})


def test_shear_magnitude_is_checked_not_the_components():
    jaxgal.ExternalShear(0.7, 0.7)  # |gamma| = 0.99
    with pytest.raises(ValueError, match="\\|gamma\\|"):
        jaxgal.ExternalShear(0.8, 0.7)


@jax.jit
def _checked_sie_deflection(values):
    return jaxgal.SIE(*values).checked().deflection(jnp.ones(2), jnp.zeros(2))


@jax.jit
def _checked_shear_deflection(values):
    return jaxgal.ExternalShear(*values).checked().deflection(jnp.ones(2), jnp.zeros(2))


@pytest.mark.parametrize("name, value", BAD_SIE)
def test_sie_rejects_inside_jit(name, value):
    bad = jnp.asarray([value if key == name else good for key, good in GOOD_SIE.items()])
    with pytest.raises(Exception, match=f"SIE {name}"):
        jax.block_until_ready(_checked_sie_deflection(bad))
    good = _checked_sie_deflection(jnp.asarray(list(GOOD_SIE.values())))
    assert np.all(np.isfinite(np.asarray(good)))


@pytest.mark.parametrize("name, value", BAD_SHEAR)
def test_shear_rejects_inside_jit(name, value):
    bad = jnp.asarray([value if key == name else good for key, good in GOOD_SHEAR.items()])
    message = f"ExternalShear {name}" if np.isnan(value) or np.isinf(value) else "\\|gamma\\|"
    with pytest.raises(Exception, match=message):
        jax.block_until_ready(_checked_shear_deflection(bad))
    good = _checked_shear_deflection(jnp.asarray(list(GOOD_SHEAR.values())))
    assert np.all(np.isfinite(np.asarray(good)))


def test_mismatched_shapes_name_the_parameters():
    with pytest.raises(ValueError, match="SIE parameters have mismatched shapes: theta_e"):
        jaxgal.SIE(jnp.ones(3), jnp.full(2, 0.5), 0.0)
    with pytest.raises(ValueError, match="ExternalShear parameters have mismatched shapes"):
        jaxgal.ExternalShear(jnp.zeros(3), jnp.zeros(4))
