# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: light
# ---

# # GaLNet in four steps
#
# Simulate KiDS-like cutouts on the fly, ask the shipped GaLNet-2 for their Sersic
# parameters with uncertainties, score it, and take a few training steps of a tiny
# network. Small enough to run in the test suite.

import tempfile

import jax
import numpy as np

import jaxgal
from jaxgal.networks import TrainConfig, train
from jaxgal.networks.evaluate import score
from jaxgal.simulate import KIDS, make_simulator

# 1. A batch of simulated cutouts: every galaxy with its own Sersic, Moffat PSF and depth.
simulate = make_simulator(KIDS, batch_size=64)
batch = simulate(jax.random.key(0))
print("images", batch.images.shape, "PSF stamps", batch.psf_images.shape)
print("labels:", sorted(batch.labels))

# 2. The shipped KiDS GaLNet-2: parameters named as in `jaxgal.Sersic`, each with `_err`.
galnet = jaxgal.GaLNet.pretrained("kids")
predicted = galnet.predict(batch.images, batch.psf_images, zero_point=KIDS.zero_point)
for name in ("magnitude", "r_eff", "n", "q"):
    print(
        f"{name:9s} true {float(batch.labels[name][0]):7.3f}  "
        f"predicted {predicted[name][0]:7.3f} +- {predicted[name + '_err'][0]:.3f}"
    )

# 3. Scores over the batch (the full evaluation is experiments/evaluate_galnet.py).
truth = {name: np.asarray(value) for name, value in batch.labels.items()}
scores = score(predicted, truth, mask=truth["snr"] >= 20)
for name in ("magnitude", "r_eff", "n", "q"):
    s = scores[name]
    print(f"{name:9s} NMAD {s['nmad']:.3f}  within 1 sigma {s['within_1_sigma']:.0%}")

# 4. A tiny training run (the shipped model's command is in its .json next to the weights).
config = TrainConfig(widths=(4, 8), psf_widths=(4,), hidden=16, batch_size=8, steps=10)
with tempfile.TemporaryDirectory() as run_dir:
    tiny = train(config, run_dir, progress=False)
print("trained a tiny GaLNet-2 for", config.steps, "steps")
