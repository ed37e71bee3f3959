"""GaLNet: label transforms, training that learns, resumption after a kill, scoring."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgal.networks import (
    TrainConfig,
    fit_sigma_scale,
    gaussian_nll,
    to_parameters,
    to_targets,
    train,
)
from jaxgal.networks.evaluate import deviations, nmad, score
from jaxgal.networks.train import build_model
from jaxgal.simulate import KIDS, make_simulator, simulate_batch

TINY = dict(widths=(4, 8), psf_widths=(4,), hidden=16, batch_size=8, log_every=5)


def test_targets_round_trip_to_parameters():
    labels = {
        "magnitude": jnp.array([17.5, 21.0]),
        "r_eff": jnp.array([0.3, 3.0]),
        "n": jnp.array([0.7, 5.5]),
        "q": jnp.array([0.25, 0.9]),
        "pa": jnp.array([5.0, 170.0]),
        "x0": jnp.array([0.05, -0.02]),
        "y0": jnp.array([-0.07, 0.01]),
    }
    targets = to_targets(labels, KIDS)
    assert np.all(np.abs(targets) <= 1.0)
    back = to_parameters(targets, jnp.full_like(targets, 0.01), KIDS)
    for name, value in labels.items():
        np.testing.assert_allclose(back[name], value, rtol=1e-6, atol=1e-9, err_msg=name)
    # the errors are the scaled sigma times the prior's half-range (and r_eff for ln r_eff)
    half_ln_r = 0.5 * np.log(4.0 / 0.2)
    np.testing.assert_allclose(back["r_eff_err"], 0.01 * half_ln_r * labels["r_eff"], rtol=1e-6)


def held_out_nll(model, preset, key):
    batch = simulate_batch(key, preset, 64)
    mean, sigma = model(batch.images, batch.psf_images)
    return float(gaussian_nll(mean, sigma, to_targets(batch.labels, preset)))


# One training run, in float32 in a process of its own (as a user trains; 3x faster than
# the suite's float64), serves both tests: it must learn, and a run of the same
# configuration killed part-way and resumed must end with the same weights.
STEPS = 60
SHORT = dict(steps=STEPS, learning_rate=3e-3, warmup_steps=10, checkpoint_every=1, **TINY)
RESUMABLE = """
import json, sys
import jax
from jaxgal.networks.pretrained import export_weights
from jaxgal.networks.train import TrainConfig, build_model, train
config = TrainConfig(**{config})
model = train(config, sys.argv[1], progress=False)
if len(sys.argv) > 2:
    export_weights(model, config, sys.argv[2], command="test")
if len(sys.argv) > 3:  # the held-out loss before and after, on 64 fresh simulations
    from jaxgal.simulate import KIDS
    sys.path.insert(0, {tests!r})
    from test_networks import held_out_nll
    key = jax.random.key(12345)  # a key the training never draws
    loss = dict(before=held_out_nll(build_model(config), KIDS, key))
    loss["after"] = held_out_nll(model, KIDS, key)
    with open(sys.argv[3], "w") as f:
        json.dump(loss, f)
"""


def run_script(script, *args, wait=True):
    command = [sys.executable, str(script), *map(str, args)]
    # on the CPU, where XLA is deterministic, whatever accelerator the machine has
    environment = {**os.environ, "JAX_ENABLE_X64": "0", "JAX_PLATFORMS": "cpu"}
    if wait:
        subprocess.run(command, env=environment, check=True)
        return None
    return subprocess.Popen(command, env=environment)


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    """The run from start to end, in a directory that holds its script, its exported
    weights and its held-out losses: (that directory, the script)."""
    directory = tmp_path_factory.mktemp("training")
    script = directory / "run.py"
    script.write_text(RESUMABLE.format(config=repr(SHORT), tests=str(Path(__file__).parent)))
    run_script(
        script, directory / "straight", directory / "straight_weights", directory / "loss.json"
    )
    return directory, script


# both in one test worker, which runs the straight run once
TRAINING = pytest.mark.xdist_group("training")


@TRAINING
def test_a_short_training_run_lowers_the_held_out_loss(straight_run):
    """On 64 fresh simulations (a key the training never draws), before and after."""
    directory, _ = straight_run
    loss = json.loads((directory / "loss.json").read_text())
    assert loss["after"] < loss["before"] - 0.05, loss
    lines = (directory / "straight/metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == list(range(5, STEPS + 1, 5))


def checkpointed_steps(run_dir):
    checkpoints = run_dir / "checkpoints"
    if not checkpoints.exists():
        return []
    return [int(p.name) for p in checkpoints.iterdir() if p.name.isdigit()]


@TRAINING
def test_a_killed_run_resumes_to_the_same_model(straight_run, tmp_path):
    directory, script = straight_run
    # the same run, killed once it has checkpointed a few steps
    killed = tmp_path / "killed"
    process = run_script(script, killed, wait=False)
    deadline = time.time() + 300
    while time.time() < deadline and max(checkpointed_steps(killed), default=0) < 4:
        assert process.poll() is None, "the run ended before it could be killed"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    reached = max(checkpointed_steps(killed), default=0)
    assert 4 <= reached < STEPS, reached
    run_script(script, killed, tmp_path / "resumed_weights")

    with (
        np.load(directory / "straight_weights.npz") as a,
        np.load(tmp_path / "resumed_weights.npz") as b,
    ):
        assert sorted(a.files) == sorted(b.files)
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    lines = (killed / "metrics.jsonl").read_text().splitlines()
    logged = [json.loads(line)["step"] for line in lines]
    assert logged == list(range(5, STEPS + 1, 5)), logged


def test_calibrated_sigmas_cover_68_percent_of_fresh_simulations():
    model = build_model(TrainConfig(**TINY))  # untrained: its sigmas are far off
    model.sigma_scale = fit_sigma_scale(model, seed=0, count=1024, batch=256)
    simulate = make_simulator(KIDS, 256)  # the fit's batch size: its compiled simulator
    pulls = []
    for i in range(4):  # other galaxies than the fit's, in batches that keep memory small
        data = simulate(jax.random.fold_in(jax.random.key(2024), i))
        mean, sigma = model(data.images, data.psf_images)
        pulls.append(np.abs(np.asarray((to_targets(data.labels, KIDS) - mean) / sigma)))
    pulls = np.concatenate(pulls)
    # 1024 draws: the binomial standard error of 68.3 % is 1.5 %
    np.testing.assert_allclose(np.mean(pulls < 1.0, axis=0), 0.6827, atol=0.06)


def test_another_configuration_in_the_same_directory_is_refused(tmp_path):
    train(TrainConfig(steps=2, **TINY), tmp_path, progress=False)
    with pytest.raises(ValueError, match="another configuration"):
        train(TrainConfig(steps=2, seed=1, **TINY), tmp_path, progress=False)


def test_scores_of_calibrated_gaussian_predictions():
    rng = np.random.default_rng(0)
    count = 20000
    truth = {
        "magnitude": rng.uniform(17, 21, count),
        "r_eff": rng.uniform(0.3, 3, count),
        "n": rng.uniform(0.5, 6, count),
        "q": rng.uniform(0.2, 0.79, count),
        "pa": rng.uniform(0, 180, count),
        "x0": np.zeros(count),
        "y0": np.zeros(count),
    }
    sigma = {
        "magnitude": 0.05,
        "r_eff": 0.1,
        "n": 0.2,
        "q": 0.04,
        "pa": 5.0,
        "x0": 0.01,
        "y0": 0.01,
    }
    predicted = {}
    for name, s in sigma.items():
        if name in ("r_eff", "n"):  # Gaussian in ln
            predicted[name] = truth[name] * np.exp(rng.normal(0, s, count))
            predicted[name + "_err"] = s * predicted[name]
        else:
            predicted[name] = truth[name] + rng.normal(0, s, count)
            predicted[name + "_err"] = np.full(count, s)
    predicted["pa"] = np.mod(predicted["pa"], 180.0)  # as predicted: in [0, 180)
    scores = score(predicted, truth)
    for name, s in sigma.items():
        assert scores[name]["nmad"] == pytest.approx(s, rel=0.05), name
        assert scores[name]["within_1_sigma"] == pytest.approx(0.6827, abs=0.01), name
        assert scores[name]["within_2_sigma"] == pytest.approx(0.9545, abs=0.006), name
    assert nmad(rng.normal(0, 2.0, 100000)) == pytest.approx(2.0, rel=0.02)
    # the angle wraps: 179 degrees predicted as 1 is 2 degrees off, not 178
    wrapped = deviations({**predicted, "pa": np.array([1.0])}, {"pa": np.array([179.0])})
    assert wrapped["pa"][0] == pytest.approx(2.0)
