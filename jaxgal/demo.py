"""`jaxgal demo`: the whole loop on a built-in default, with its speed and accuracy.

    jaxgal demo [--count 48] [--hmc-count 1] [--seed 0]

Simulates `count` KiDS-like cutouts (`jaxgal.io.simulated_set`: jaxgal's own simulator,
with each pixel's true noise sigma), then fits them with the shipped GaLNet-2 ("cnn"),
refines the CNN's answers by least squares ("cnn+refine") and samples the posterior of the
first `hmc_count` with NUTS ("cnn+refine+hmc": 2 chains of 100 draws after 100 of warm-up).
Prints, for each method, the seconds per galaxy (after a first call that compiles, timed
apart; NUTS with its compilation) and the bias, NMAD and share of
truths within the quoted 1 sigma for magnitude, r_eff, n and q. The independent comparison
on GalSim renderings, with the peers, is benchmarks/compare_methods.py.
"""

from __future__ import annotations

import time

import numpy as np

from jaxgal.networks.evaluate import nmad

SCORED = ("magnitude", "r_eff", "n", "q")


def _errors(table, truth, name):
    """Deviations as scored for GaLNet: magnitude and q as differences, sizes as ratios."""
    estimate, true = np.asarray(table[name], float), np.asarray(truth[name], float)
    if name in ("r_eff", "n"):
        return estimate / true - 1.0, np.asarray(table[name + "_err"], float) / true
    return estimate - true, np.asarray(table[name + "_err"], float)


def score_table(table, truth) -> dict:
    """Bias, NMAD and the share within 1 sigma of each scored parameter."""
    scores = {}
    for name in SCORED:
        error, sigma = _errors(table, truth, name)
        scores[name] = {
            "bias": float(np.median(error)),
            "nmad": nmad(error),
            "within_1_sigma": float(np.mean(np.abs(error) <= sigma)),
        }
    return scores


def _timed(function, warm_up):
    """(result, seconds) of `function()`, after `warm_up()` has compiled what it needs."""
    start = time.perf_counter()
    warm_up()
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    result = function()
    return result, time.perf_counter() - start, compile_seconds


def run_demo(count: int = 48, hmc_count: int = 1, seed: int = 0, preset_name: str = "kids"):
    """Run the loop and return {method: {"galaxies", "seconds_per_galaxy", "compile_seconds",
    "scores"}}; `print_report` shows it."""
    import jaxgal
    from jaxgal.io.simulated_set import simulate_set
    from jaxgal.simulate.presets import get_preset

    preset = get_preset(preset_name)
    images, psf_images, sigma, truth = simulate_set(preset, count, seed)
    options = dict(zero_point=preset.zero_point, pixel_scale=preset.pixel_scale)
    report = {}

    def fit(method, rows, **extra):
        return jaxgal.fit(
            images[rows], psf_images[rows], sigma[rows], method=method, **options, **extra
        )

    everything, first = slice(0, count), slice(0, 1)
    hmc_options = dict(key=seed, num_warmup=100, num_samples=100, num_chains=2)
    runs = [
        ("cnn", everything, {}),
        ("cnn+refine", everything, {}),
        ("cnn+refine+hmc", slice(0, hmc_count), hmc_options),
    ]
    for method, rows, extra in runs:
        # NUTS is timed with its compilation: a separate first call would sample twice
        sampled = method.endswith("hmc")
        table, seconds, compile_seconds = _timed(
            lambda method=method, rows=rows, extra=extra: fit(method, rows, **extra),
            (lambda: None) if sampled else (lambda method=method: fit(method, first)),
        )
        if sampled:
            compile_seconds = None
        chosen = truth[rows]
        galaxies = len(table)
        report[method] = {
            "galaxies": galaxies,
            "seconds_per_galaxy": seconds / galaxies,
            "compile_seconds": compile_seconds,
            "scores": score_table(table, chosen),
        }
        if "converged" in table.colnames:
            report[method]["converged"] = int(np.sum(table["converged"]))
    return report


def print_report(report: dict) -> None:
    header = f"{'method':16s} {'N':>4s} {'s/galaxy':>9s} {'compile s':>9s}"
    for name in SCORED:
        header += f" | {name + ' bias/NMAD/1sig':>26s}"
    print(header)
    for method, entry in report.items():
        line = f"{method:16s} {entry['galaxies']:4d} {entry['seconds_per_galaxy']:9.4f} " + (
            f"{entry['compile_seconds']:9.1f}"
            if entry["compile_seconds"] is not None
            else f"{'included':>9s}"
        )
        for name in SCORED:
            s = entry["scores"][name]
            line += f" | {s['bias']:+8.4f} {s['nmad']:7.4f} {s['within_1_sigma']:6.0%}   "
        print(line)
    print(
        "magnitude and q: differences; r_eff and n: ratios - 1. HMC on few galaxies: its "
        "scores are anecdotal (the calibration is experiments/hmc_calibration.py)."
    )
