"""Point-source images, critical curves and caustics against lenstronomy and invariants.

The reference for the images is lenstronomy's `LensEquationSolver` (its grid search and
gradient descent, which works for any lens model) on `EPL` (gamma = 2) + `SHEAR`; its
magnifications, ray shooting, Fermat potential and Hessian are evaluated independently at
our images and critical points. Sources are placed from our own caustics and cut and the
number of images they must have is read from that geometry too (1 outside both, + 1 inside
the cut, + 2 inside the caustic), then checked against lenstronomy's count.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from lensing_reference import sie_epl_keywords
from lenstronomy.LensModel.lens_model import LensModel
from lenstronomy.LensModel.Solver.lens_equation_solver import LensEquationSolver

import jaxgal
from jaxgal import lensing

pytestmark = [
    pytest.mark.xdist_group("lensing_point_source"),  # the tests share their compilations
    # lenstronomy's EPL divides by zero where its solver's grid passes through the centre
    pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
]

NAMES = ("theta_e", "q", "pa", "x0", "y0", "gamma1", "gamma2")


def _population(count, seed=20261205):
    """Lenses of the seed's population (issue 5): theta_e 1 .. 2.5 (1 + exponential of scale
    1, truncated), q uniform 0.3 .. 1 (the first exactly 1), pa uniform, centre normal(0,
    0.15) truncated to 0.3, external shear (about the lens centre) uniform up to 0.1."""
    rng = np.random.default_rng(seed)
    theta_e = 1.0 + rng.exponential(1.0, 20 * count)
    theta_e = theta_e[theta_e <= 2.5][:count]
    q = rng.uniform(0.3, 1.0, count)
    q[0] = 1.0
    pa = rng.uniform(0.0, 180.0, count)
    centre = np.clip(rng.normal(0.0, 0.15, (count, 2)), -0.3, 0.3)
    magnitude = rng.uniform(0.0, 0.1, count)
    angle = rng.uniform(0.0, np.pi, count)
    shear = magnitude[:, None] * np.stack([np.cos(2 * angle), np.sin(2 * angle)], axis=1)
    return np.column_stack([theta_e, q, pa, centre, shear])


def _models(parameters):
    theta_e, q, pa, x0, y0, gamma1, gamma2 = (parameters[..., i] for i in range(7))
    return jaxgal.SIE(theta_e, q, pa, x0, y0), jaxgal.ExternalShear(gamma1, gamma2, x0, y0)


@jax.jit
@jax.vmap
def _solve_batch(parameters, source):
    """The images and, at each slot, |beta - theta + alpha(theta)| from jaxgal's deflection."""
    images = lensing.image_positions(_models(parameters), source[0], source[1], max_images=8)
    alpha_x, alpha_y = lensing.deflection(_models(parameters), images.x, images.y)
    residual = jnp.hypot(images.x - alpha_x - source[0], images.y - alpha_y - source[1])
    return images, residual


BATCH = 32  # every batch is padded to this size: one compilation for the whole file


def _solve(parameters, sources):
    """`_solve_batch` on up to BATCH lenses (and sources), as numpy arrays."""
    count = len(sources)
    pad = [(0, BATCH - count), (0, 0)]
    parameters = np.pad(np.broadcast_to(parameters, (count, 7)), pad, mode="edge")
    sources = np.pad(np.asarray(sources, float), pad, mode="edge")
    result = _solve_batch(jnp.asarray(parameters), jnp.asarray(sources))
    return jax.tree_util.tree_map(lambda leaf: np.asarray(leaf)[:count], result)


@jax.jit
def _curves(parameters):
    return lensing.critical_curves(_models(parameters))


def _keywords(parameters):
    theta_e, q, pa, x0, y0, gamma1, gamma2 = np.asarray(parameters, float)
    return [
        sie_epl_keywords(theta_e, q, pa, x0, y0),
        dict(gamma1=gamma1, gamma2=gamma2, ra_0=x0, dec_0=y0),
    ]


LENSTRONOMY = LensModel(["EPL", "SHEAR"])


def _lenstronomy_images(parameters, source, min_distance=0.02):
    theta_e, x0, y0 = parameters[0], parameters[3], parameters[4]
    solver = LensEquationSolver(LENSTRONOMY)
    x, y = solver.image_position_from_source(
        source[0],
        source[1],
        _keywords(parameters),
        min_distance=min_distance,
        search_window=4 * theta_e + 1,
        x_center=x0,
        y_center=y0,
    )
    return np.asarray(x), np.asarray(y)


def _inside(curve_x, curve_y, x, y):
    """Whether (x, y) is inside the closed polygon (even-odd rule)."""
    next_x, next_y = np.roll(curve_x, -1), np.roll(curve_y, -1)
    straddles = (curve_y > y) != (next_y > y)
    safe = np.where(straddles, next_y - curve_y, 1.0)
    crossing_x = curve_x + (y - curve_y) * (next_x - curve_x) / safe
    return bool(np.sum(straddles & (x < crossing_x)) % 2)


def _expected_count(parameters, source):
    """1 + (inside the cut) + 2 (inside the tangential caustic): SIE + shear."""
    curves = _curves(jnp.asarray(parameters))
    caustic = np.asarray(curves.caustic_x), np.asarray(curves.caustic_y)
    cut = np.asarray(curves.cut_x), np.asarray(curves.cut_y)
    return 1 + _inside(*cut, *source) + 2 * _inside(*caustic, *source)


def _symmetric(parameters, cancelling=False):
    """The lens with its shear turned onto the SIE's axes (same magnitude), and its cusps
    on the major (0) and minor (1) axes, from the same lens at pa = 0 about the origin
    (where they are the caustic's points at polar angles 0 and pi / 2), turned back.

    The shear stretches along the SIE's minor axis, adding to its ellipticity; turned the
    other way (`cancelling`) they cancel, and for a round SIE (q = 0.93, |gamma| = 0.025)
    the caustic shrinks to 1e-3 arcsec with up to 8 images (`test_more_than_four_images`)."""
    theta_e, q, pa, x0, y0, gamma1, gamma2 = parameters
    magnitude = np.hypot(gamma1, gamma2) * (1 if cancelling else -1)
    angle = np.deg2rad(pa)
    symmetric = np.array(
        [theta_e, q, pa, x0, y0, magnitude * np.cos(2 * angle), magnitude * np.sin(2 * angle)]
    )
    aligned = np.array([theta_e, q, 0.0, 0.0, 0.0, magnitude, 0.0])
    curves = _curves(jnp.asarray(aligned))
    quarter = curves.angle.shape[0] // 4
    cusps = []
    for index in (0, quarter):
        x, y = float(curves.caustic_x[index]), float(curves.caustic_y[index])
        cusps.append(
            (
                np.cos(angle) * x - np.sin(angle) * y,
                np.sin(angle) * x + np.cos(angle) * y,
            )
        )
    return symmetric, np.asarray(cusps)


LENSES = _population(6)
KINDS = ("quad", "double", "fold")
# (lens, kind): three sources per lens, near-cusp sources for two lenses made symmetric,
# and a single image (outside the cut) behind the flattest lens
CASES = [(lens, kind) for lens in range(len(LENSES)) for kind in KINDS]
CASES += [(1, "major cusp"), (1, "minor cusp"), (3, "major cusp"), (4, "minor cusp")]
CASES += [(int(np.argmin(LENSES[:, 1])), "single")]


def _source(lens, kind, rng):
    """The lens parameters (the symmetric lens for a cusp) and the source of a case."""
    parameters = LENSES[lens]
    curves = _curves(jnp.asarray(parameters))
    caustic_x, caustic_y = np.asarray(curves.caustic_x), np.asarray(curves.caustic_y)
    middle = np.array([caustic_x.mean(), caustic_y.mean()])
    distance = np.hypot(caustic_x - middle[0], caustic_y - middle[1])
    centre = parameters[3:5]
    if kind == "quad":  # halfway to a random point of the (star-shaped) caustic
        index = rng.integers(len(caustic_x))
        return parameters, middle + 0.5 * (np.array([caustic_x[index], caustic_y[index]]) - middle)
    if kind == "double":  # beyond the caustic, inside the cut
        index = rng.integers(len(caustic_x))
        point = np.array([caustic_x[index], caustic_y[index]])
        cut_radius = np.min(np.hypot(curves.cut_x - middle[0], curves.cut_y - middle[1]))
        reach = min(1.5 * distance[index], 0.5 * (distance[index] + cut_radius))
        return parameters, middle + reach / distance[index] * (point - middle)
    if kind == "fold":  # 1e-3 inside the fold nearest the middle of the caustic
        index = np.argmin(distance)
        point = np.array([caustic_x[index], caustic_y[index]])
        return parameters, middle + (1 - 1e-3) * (point - middle)
    if kind == "single":  # beyond the cut
        cut = np.hypot(curves.cut_x - centre[0], curves.cut_y - centre[1])
        return parameters, centre + 1.05 * np.max(cut) * np.array([0.6, 0.8])
    symmetric, cusps = _symmetric(parameters)
    cusp = cusps[0 if kind == "major cusp" else 1]
    return symmetric, symmetric[3:5] + (1 - 1e-2) * cusp


@pytest.fixture(scope="module")
def solved():
    """Every case: lens parameters, source, our images and residuals, expected count."""
    rng = np.random.default_rng(7)
    parameters, sources = zip(*(_source(lens, kind, rng) for lens, kind in CASES), strict=True)
    parameters, sources = np.asarray(parameters), np.asarray(sources)
    images, residuals = _solve(parameters, sources)
    expected = [_expected_count(p, s) for p, s in zip(parameters, sources, strict=True)]
    return parameters, sources, images, residuals, expected


def _case(solved, index):
    parameters, sources, images, residuals, expected = solved
    valid = images.valid[index]
    ours = {
        name: getattr(images, name)[index][valid]
        for name in ("x", "y", "magnification", "fermat_potential")
    }
    ours["residual"] = residuals[index][valid]
    return parameters[index], sources[index], ours, int(images.count[index]), expected[index]


CASE_IDS = [f"{kind}-{lens}" for lens, kind in CASES]


@pytest.mark.parametrize("index", range(len(CASES)), ids=CASE_IDS)
def test_images_match_lenstronomy(solved, index):
    parameters, source, ours, count, expected = _case(solved, index)
    # its grid must be finer than the images of a cusp are apart (0.1 arcsec here)
    x, y = _lenstronomy_images(parameters, source, 0.01 if "cusp" in CASES[index][1] else 0.02)
    assert count == len(ours["x"]) == expected == len(x), (count, expected, len(x))
    # one-to-one nearest matches (the order of equal arrival times is arbitrary)
    separation = np.hypot(ours["x"][:, None] - x[None, :], ours["y"][:, None] - y[None, :])
    match = np.argmin(separation, axis=1)
    assert len(set(match.tolist())) == count
    assert np.max(separation[np.arange(count), match]) <= 1e-6
    keywords = _keywords(parameters)
    reference = LENSTRONOMY.magnification(ours["x"], ours["y"], keywords)
    np.testing.assert_allclose(ours["magnification"], reference, rtol=1e-6)
    fermat = LENSTRONOMY.fermat_potential(ours["x"], ours["y"], keywords, *source)
    np.testing.assert_allclose(ours["fermat_potential"], fermat, rtol=1e-9, atol=1e-12)
    assert np.all(np.diff(ours["fermat_potential"]) >= 0)  # first arrival first


@pytest.mark.parametrize("index", range(len(CASES)), ids=CASE_IDS)
def test_lens_equation_residual(solved, index):
    parameters, source, ours, _, _ = _case(solved, index)
    beta_x, beta_y = LENSTRONOMY.ray_shooting(ours["x"], ours["y"], _keywords(parameters))
    assert np.max(np.hypot(beta_x - source[0], beta_y - source[1])) < 1e-10
    assert np.max(ours["residual"]) < 1e-10


def test_empty_slots(solved):
    parameters, _, images, _, _ = solved
    assert np.all(images.count == images.valid.sum(axis=1))
    assert np.all(images.valid[:, :-1] >= images.valid[:, 1:])  # images first
    empty = ~images.valid
    # an empty slot: the lens centre, magnification and Fermat potential 0
    assert np.all(np.where(empty, images.x, parameters[:, 3:4]) == parameters[:, 3:4])
    assert np.all(np.where(empty, images.y, parameters[:, 4:5]) == parameters[:, 4:5])
    assert np.all(images.magnification[empty] == 0) and np.all(images.fermat_potential[empty] == 0)


# a symmetric lens (shear along the SIE's axes) at a general orientation: its cusps lie on
# the axes exactly, so a source can be put a known tiny distance inside or outside one
CUSP_LENS = np.array([1.5, 0.6, 37.77, 0.1, -0.05, 0.04, 0.0])


@pytest.mark.parametrize("axis", [0, 1])
def test_images_next_to_a_cusp_and_a_fold(axis):
    parameters, cusps = _symmetric(CUSP_LENS)
    centre = parameters[3:5]
    fractions = np.array([1e-3, 1e-4, 1e-5, 1e-6, 1e-7, -1e-6, -1e-3])
    sources = [centre + (1 - fraction) * cusps[axis] for fraction in fractions]
    # and towards a fold (the caustic at polar angle pi / 4), from 1e-2 to 1e-10 inside
    curves = _curves(jnp.asarray(parameters))
    index = curves.angle.shape[0] // 8
    fold = np.array([curves.caustic_x[index], curves.caustic_y[index]]) - centre
    sources += [centre + (1 - fraction) * fold for fraction in (1e-2, 1e-4, 1e-6, 1e-8, 1e-10)]
    images, residuals = _solve(parameters, sources)
    np.testing.assert_array_equal(images.count, [4, 4, 4, 4, 4, 2, 2, 4, 4, 4, 4, 4])
    for index, source in enumerate(sources):
        valid = images.valid[index]
        x, y = images.x[index][valid], images.y[index][valid]
        beta_x, beta_y = LENSTRONOMY.ray_shooting(x, y, _keywords(parameters))
        assert np.max(np.hypot(beta_x - source[0], beta_y - source[1])) < 1e-10
        assert np.max(residuals[index][valid]) < 1e-10
    # the three images of the source 1e-7 inside the cusp lie within 2e-3 arcsec
    valid = images.valid[4]
    x, y = images.x[4][valid], images.y[4][valid]
    separations = np.sort(np.hypot(x[:, None] - x, y[:, None] - y)[np.triu_indices(4, k=1)])
    assert separations[2] < 2e-3, separations


def test_more_than_four_images():
    # Shear nearly cancelling the SIE's ellipticity leaves a caustic of 1e-3 arcsec with
    # extra cusps; next to one of them, 8 images (lenstronomy's grid solver finds 3 to 4 of
    # them depending on its grid, its analytical solver 6). Each is checked on its own with
    # lenstronomy's ray shooting and magnification.
    parameters, cusps = _symmetric(LENSES[1], cancelling=True)
    source = parameters[3:5] + (1 - 1e-3) * cusps[0]
    images, residuals = _solve(parameters, [source])
    assert int(images.count[0]) == 8 and images.valid[0].sum() == 8
    x, y = images.x[0], images.y[0]
    assert np.min(np.hypot(x[:, None] - x, y[:, None] - y) + np.eye(8)) > 1e-3  # distinct
    keywords = _keywords(parameters)
    beta_x, beta_y = LENSTRONOMY.ray_shooting(x, y, keywords)
    assert np.max(np.hypot(beta_x - source[0], beta_y - source[1])) < 1e-10
    assert np.max(residuals[0]) < 1e-10
    np.testing.assert_allclose(
        images.magnification[0], LENSTRONOMY.magnification(x, y, keywords), rtol=1e-6
    )


def test_critical_curves_and_caustics_against_lenstronomy():
    for parameters in LENSES:
        curves = jax.tree_util.tree_map(np.asarray, _curves(jnp.asarray(parameters)))
        keywords = _keywords(parameters)
        x, y = curves.x, curves.y
        f_xx, f_xy, f_yx, f_yy = LENSTRONOMY.hessian(x, y, keywords)
        determinant = (1 - f_xx) * (1 - f_yy) - f_xy * f_yx
        scale = 1 + np.abs(f_xx) + np.abs(f_yy) + np.abs(f_xy)  # the size of its terms
        assert np.max(np.abs(determinant) / scale) < 1e-12
        beta_x, beta_y = LENSTRONOMY.ray_shooting(x, y, keywords)
        caustic_error = np.hypot(beta_x - curves.caustic_x, beta_y - curves.caustic_y)
        assert np.max(caustic_error) < 1e-12
        # the cut is the limit of the lens equation at the centre: within 1e-7 of its image
        # 1e-7 arcsec away (lenstronomy's EPL itself is good to ~1e-7 arcsec from it)
        angle = curves.angle
        near_x = parameters[3] + 1e-7 * np.cos(angle)
        near_y = parameters[4] + 1e-7 * np.sin(angle)
        beta_x, beta_y = LENSTRONOMY.ray_shooting(near_x, near_y, keywords)
        cut_error = np.hypot(beta_x - curves.cut_x, beta_y - curves.cut_y)
        assert np.max(cut_error) < 3e-7
    # q = 1 without shear: the Einstein ring, a point caustic at the centre
    ring = jax.tree_util.tree_map(np.asarray, _curves(jnp.asarray([1.3, 1, 0, 0.1, 0, 0, 0.0])))
    np.testing.assert_allclose(np.hypot(ring.x - 0.1, ring.y), 1.3, rtol=1e-14)
    np.testing.assert_allclose(ring.caustic_x, 0.1, atol=1e-14)
    np.testing.assert_allclose(ring.caustic_y, 0.0, atol=1e-14)


def _first_images(parameters, source):
    """Positions and magnifications of the images of one lens (not vmapped), with the
    whole result as auxiliary output."""
    images = lensing.image_positions(_models(parameters), source[0], source[1], max_images=8)
    return jnp.stack([images.x, images.y, images.magnification]), images


_IMAGE_JACOBIAN = jax.jit(jax.jacfwd(_first_images, argnums=(0, 1), has_aux=True))


def test_gradients_match_finite_differences(solved):
    # a quad of an elliptical lens: derivatives of the 4 positions and magnifications with
    # respect to the 7 lens parameters and the source position
    index = CASES.index((2, "quad"))
    parameters, sources, _, _, _ = solved
    parameters, source = parameters[index], sources[index]
    (jacobian_lens, jacobian_source), images = _IMAGE_JACOBIAN(
        jnp.asarray(parameters), jnp.asarray(source)
    )
    assert int(images.count) == 4
    analytic = np.concatenate([np.asarray(jacobian_lens), np.asarray(jacobian_source)], axis=-1)
    steps = np.array([1e-6, 1e-6, 1e-4, 1e-6, 1e-6, 1e-6, 1e-6, 1e-6, 1e-6])
    shifted = np.concatenate([parameters, source]) + np.concatenate(
        [np.diag(steps), -np.diag(steps)]
    )
    shifted_images, _ = _solve(shifted[:, :7], shifted[:, 7:])
    values = np.stack([shifted_images.x, shifted_images.y, shifted_images.magnification], 1)
    finite = ((values[:9] - values[9:]) / (2 * steps[:, None, None])).transpose(1, 2, 0)
    valid = np.asarray(images.valid)
    scale = np.max(np.abs(finite[:, valid]), axis=-1, keepdims=True)
    error = np.abs(analytic[:, valid] - finite[:, valid]) / scale
    assert np.max(error) < 1e-6, np.max(error, axis=(0, 1))


def test_batch_by_vmap_equals_one_lens_at_a_time(solved):
    parameters, sources, images, _, _ = solved
    for index in range(0, len(CASES), 5):
        _, one = _IMAGE_JACOBIAN(jnp.asarray(parameters[index]), jnp.asarray(sources[index]))
        for name in ("x", "y", "magnification", "fermat_potential", "valid", "count"):
            np.testing.assert_allclose(
                np.asarray(getattr(one, name)), getattr(images, name)[index], rtol=1e-12, atol=1e-14
            )


def test_float32(solved):
    # away from caustics float32 finds the same images, to ~1e-6 of theta_e
    parameters, sources, images, _, _ = solved
    chosen = [index for index, (_, kind) in enumerate(CASES) if kind in ("quad", "double")]
    single = _solve_batch(
        jnp.asarray(np.resize(parameters[chosen], (BATCH, 7)), jnp.float32),
        jnp.asarray(np.resize(sources[chosen], (BATCH, 2)), jnp.float32),
    )[0]
    assert single.x.dtype == jnp.float32
    count = len(chosen)
    np.testing.assert_array_equal(np.asarray(single.count)[:count], images.count[chosen])
    for name in ("x", "y"):
        difference = np.asarray(getattr(single, name))[:count] - getattr(images, name)[chosen]
        assert np.max(np.abs(difference)) < 2e-5
    relative = np.asarray(single.magnification)[:count] / images.magnification[chosen] - 1
    assert np.nanmax(np.abs(relative)) < 1e-3


# several SIEs about one centre and several shears about their own origins
def _sequence(parameters):
    """Two SIEs (the second's centre free, for the bad-input test) and two shears."""
    return (
        jaxgal.SIE(parameters[0], 0.5, 20.0, parameters[1], parameters[2]),
        jaxgal.SIE(0.4, 0.6, 110.0, parameters[3], parameters[4]),
        jaxgal.ExternalShear(0.05, -0.02, 0.3, 0.2),
        jaxgal.ExternalShear(-0.01, 0.03),
    )


@jax.jit
def _sequence_images_and_curves(parameters, source):
    mass = _sequence(parameters)
    images = lensing.image_positions(mass, source[0], source[1])
    return images, lensing.critical_curves(mass, n_points=128)


SEQUENCE = np.array([1.2, 0.1, -0.1, 0.1, -0.1])


def _sequence_keywords():
    return [
        sie_epl_keywords(1.2, 0.5, 20.0, 0.1, -0.1),
        sie_epl_keywords(0.4, 0.6, 110.0, 0.1, -0.1),
        dict(gamma1=0.05, gamma2=-0.02, ra_0=0.3, dec_0=0.2),
        dict(gamma1=-0.01, gamma2=0.03, ra_0=0.0, dec_0=0.0),
    ]


@pytest.mark.parametrize("source", [(0.15, -0.05), (0.5, 0.3)])
def test_sequence_of_sies_and_shears_against_lenstronomy(source):
    model = LensModel(["EPL", "EPL", "SHEAR", "SHEAR"])
    keywords = _sequence_keywords()
    images, curves = _sequence_images_and_curves(jnp.asarray(SEQUENCE), jnp.asarray(source))
    valid = np.asarray(images.valid)
    x, y = np.asarray(images.x)[valid], np.asarray(images.y)[valid]
    reference_x, reference_y = LensEquationSolver(model).image_position_from_source(
        *source, keywords, min_distance=0.02, search_window=6, x_center=0.1, y_center=-0.1
    )
    assert int(images.count) == len(reference_x) >= 2
    separation = np.hypot(x[:, None] - reference_x, y[:, None] - reference_y)
    assert np.max(np.min(separation, axis=1)) < 1e-6
    np.testing.assert_allclose(
        np.asarray(images.magnification)[valid], model.magnification(x, y, keywords), rtol=1e-6
    )
    f_xx, f_xy, f_yx, f_yy = model.hessian(np.asarray(curves.x), np.asarray(curves.y), keywords)
    determinant = (1 - f_xx) * (1 - f_yy) - f_xy * f_yx
    assert np.max(np.abs(determinant) / (1 + np.abs(f_xx) + np.abs(f_yy))) < 1e-12


def test_bad_input():
    sie, shear = _models(jnp.asarray(LENSES[1]))
    with pytest.raises(TypeError, match="got Sersic"):
        lensing.image_positions((sie, jaxgal.Sersic(1.0, 1.0, 1.0, 1.0, 0.0)), 0.0, 0.0)
    with pytest.raises(ValueError, match="at least one SIE"):
        lensing.critical_curves(shear)
    with pytest.raises(ValueError, match="share a centre"):
        lensing.image_positions((sie, jaxgal.SIE(1.0, 0.5, 0.0, 0.3, 0.0)), 0.0, 0.0)
    with pytest.raises(ValueError, match="total \\|gamma\\|"):
        lensing.critical_curves(
            (sie, jaxgal.ExternalShear(0.6, 0.0), jaxgal.ExternalShear(0.6, 0.1))
        )
    batch = _models(jnp.asarray(LENSES))
    with pytest.raises(ValueError, match="jax.vmap"):
        lensing.image_positions(batch, 0.0, 0.0)
    # inside jit: SIEs of different centres
    with pytest.raises(Exception, match="share a centre"):
        bad = SEQUENCE + np.array([0, 0, 0, 0.2, 0])
        jax.block_until_ready(_sequence_images_and_curves(jnp.asarray(bad), jnp.zeros(2)))
