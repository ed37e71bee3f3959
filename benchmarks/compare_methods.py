"""jaxgal's fitting methods against the peers a user would pick instead, in the same run.

    bash benchmarks/setup_peers.sh                  # once: pyimfit, pysersic (the bench extra)
    python benchmarks/compare_methods.py            # ~20 min on 2 cores; JSON, Markdown, PNG
    python benchmarks/compare_methods.py --quick    # a smoke run of a few galaxies

The test set is experiments/kids_testset.py's (GalSim, not jaxgal: KiDS-like 64 x 64 cutouts,
25 x 25 Moffat kernels, sky + Poisson noise), drawn here in memory. Every method gets the
same data: the image, the sigma map sqrt(sky^2 + image / gain), the pixelised PSF; the
classical peers start where jaxgal's "refine" starts (the images' moments). Methods:
jaxgal's "cnn", "cnn+refine", "refine" and, when `jaxgal.fitting.METHODS` has it, "hmc";
Imfit (pyimfit, Levenberg-Marquardt) and GalSim + scipy least squares on a pool of 2
processes (both cores); pysersic's NUTS (one chain; JAX uses both cores). jaxgal's time per
galaxy excludes the one-off compilation (a first call on the same batch) and the loading of
the network (once, as a pipeline does), which are reported apart; pysersic compiles a model
per image, so its time includes it.

For each: seconds per galaxy and, per parameter (magnitude, r_eff, n, q), bias (median),
scatter (NMAD) and outlier fraction, as `jaxgal.networks.evaluate` scores GaLNet; a
peer fitted on fewer galaxies is compared with jaxgal on the same ones; GalSim, whose Sersic
index stops at 6.2, with jaxgal's cnn+refine bounded to its 0.35-6.2 too (jaxgal's fit with
n up to 8 is recorded beside it). Writes
benchmarks/compare_methods.json (compare_methods_<gpu>.json on an accelerator), .md and
.png, and prints the table and the speed ratios against the floors: CNN+refine 10x faster
than Imfit and 100x faster than GalSim + scipy at equal or better accuracy, HMC faster than
pysersic's NUTS per effective sample.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from report import default_output, machine, on_accelerator, write_result

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))

import kids_testset  # noqa: E402
import peers  # noqa: E402

SCORED = ("magnitude", "r_eff", "n", "q")
GALSIM_N = (0.35, 6.2)  # the Sersic index GalSim draws, the bounds of the GalSim + scipy fit
FLOORS = {"imfit": 10.0, "galsim_scipy": 100.0}


def build_test_set(count: int, seed: int) -> dict:
    """`count` KiDS-like GalSim galaxies: images, PSF kernels, sigma maps, truths, S/N."""
    rng = np.random.default_rng(seed)
    truth = kids_testset.draw_truths(rng, count)
    rendered = [kids_testset.render(truth, i, rng) for i in range(count)]
    images = np.stack([r[0] for r in rendered]).astype(np.float64)
    sky = kids_testset.sky_sigma()
    return dict(
        images=images,
        psf_images=np.stack([r[1] for r in rendered]),
        sigma=np.sqrt(sky**2 + np.maximum(images, 0.0) / kids_testset.GAIN),
        snr=np.array([r[2] for r in rendered]),
        truth=truth,
        pixel_scale=kids_testset.PIXEL_SCALE,
        zero_point=kids_testset.ZERO_POINT,
    )


def default_starts(data: dict) -> list[dict]:
    """jaxgal's moments start, as dicts in jaxgal's conventions (the peers' start too)."""
    from jaxgal.fitting import moments_start

    start = moments_start(data["images"], data["pixel_scale"])
    leaves = {name: np.asarray(getattr(start, name)) for name in peers.NAMES}
    return [{k: float(v[i]) for k, v in leaves.items()} for i in range(len(data["images"]))]


def run_jaxgal(method: str, data: dict, count: int | None = None, **options) -> dict:
    """`jaxgal.fit` on the first `count` galaxies (all by default), twice: the first call
    compiles, the second is timed. `options` go to `jaxgal.fit` (HMC's key and lengths, the
    loaded network)."""
    import jaxgal

    rows = slice(0, count)

    def call():
        return jaxgal.fit(
            data["images"][rows],
            data["psf_images"][rows],
            data["sigma"][rows],
            method=method,
            zero_point=data["zero_point"],
            pixel_scale=data["pixel_scale"],
            as_table=False,
            **options,
        )

    clock = time.perf_counter()
    call()
    first = time.perf_counter() - clock
    clock = time.perf_counter()
    columns = call()
    seconds = time.perf_counter() - clock
    count = len(data["images"][rows])
    out = dict(
        predictions={k: np.asarray(v) for k, v in columns.items()},
        count=count,
        seconds_per_galaxy=seconds / count,
        compile_seconds=max(first - seconds, 0.0),
    )
    ess_columns = [k for k in columns if k.startswith("ess") or k.endswith("_ess")]
    if ess_columns:  # HMC: the smallest effective sample size over the parameters
        ess = np.min(np.stack([np.asarray(columns[k], float) for k in ess_columns]), axis=0)
        out["ess_per_galaxy"] = float(np.mean(ess))
        out["seconds_per_100_effective_samples"] = (
            100.0 * out["seconds_per_galaxy"] / (out["ess_per_galaxy"])
        )
    return out


def run_classical(function, data: dict, starts: list[dict], count: int, processes: int) -> dict:
    """A classical peer on the first `count` galaxies, `processes` at a time."""
    tasks = [
        (
            (data["images"][i], data["sigma"][i], data["psf_images"][i], starts[i]),
            {"pixel_scale": data["pixel_scale"]},
        )
        for i in range(count)
    ]
    results, wall = peers.fit_in_pool(function, tasks, processes)
    return dict(
        predictions=_stack(results, data["zero_point"]),
        count=count,
        seconds_per_galaxy=wall / count,
        single_core_seconds_per_galaxy=float(np.mean([r["seconds"] for r in results])),
        evaluations=[int(r["evaluations"]) for r in results],
        converged_fraction=float(np.mean([r["converged"] for r in results])),
    )


def run_pysersic(data: dict, count: int, warmup: int, samples: int) -> dict:
    results = []
    clock = time.perf_counter()
    for i in range(count):
        results.append(
            peers.pysersic_fit(
                data["images"][i],
                data["sigma"][i],
                data["psf_images"][i],
                data["pixel_scale"],
                seed=i,
                num_warmup=warmup,
                num_samples=samples,
            )
        )
    seconds = (time.perf_counter() - clock) / count
    ess = float(np.mean([r["ess"] for r in results]))
    return dict(
        predictions=_stack(results, data["zero_point"]),
        count=count,
        seconds_per_galaxy=seconds,
        warmup=warmup,
        samples=samples,
        ess_per_galaxy=ess,
        seconds_per_100_effective_samples=100.0 * seconds / ess,
    )


def _stack(results: list[dict], zero_point: float) -> dict:
    out = {name: np.array([r[name] for r in results], float) for name in peers.NAMES}
    with np.errstate(divide="ignore", invalid="ignore"):
        out["magnitude"] = zero_point - 2.5 * np.log10(out["flux"])
    return out


def score(predictions: dict, truth: dict, count: int) -> dict:
    """Bias, NMAD and outlier fraction per parameter on the first `count` galaxies."""
    from jaxgal.networks.evaluate import OUTLIER_LIMITS, deviations, nmad

    subset = lambda d: {k: np.asarray(d[k], float)[:count] for k in SCORED}  # noqa: E731
    result = {}
    for name, d in deviations(subset(predictions), subset(truth)).items():
        failed = ~np.isfinite(d)
        d = np.where(failed, np.inf, d)
        finite = d[np.isfinite(d)]
        result[name] = dict(
            bias=float(np.median(finite)) if finite.size else float("nan"),
            nmad=nmad(finite) if finite.size else float("nan"),
            outlier_fraction=float(np.mean(np.abs(d) > OUTLIER_LIMITS[name])),
        )
    return result


def markdown(rows: dict) -> str:
    head = "| method | N | s / galaxy | " + " | ".join(SCORED) + " |"
    lines = [head, "|" + "---|" * (3 + len(SCORED))]
    for label, row in rows.items():
        cells = [
            f"{s['nmad']:.3f} / {s['bias']:+.3f} / {100 * s['outlier_fraction']:.1f}%"
            for s in (row["score"][name] for name in SCORED)
        ]
        lines.append(
            f"| {label} | {row['count']} | {row['seconds_per_galaxy']:.3g} | "
            + " | ".join(cells)
            + " |"
        )
    lines.append("")
    lines.append(
        "Per parameter: NMAD / bias (median) / outlier fraction; magnitude in mag, r_eff and "
        "n as fitted / true - 1, q as fitted - true; outliers beyond 0.15 mag, 0.3, 0.6, 0.15."
    )
    return "\n".join(lines) + "\n"


def figure(results: dict, truth: dict, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jaxgal.networks.evaluate import deviations

    fig, axes = plt.subplots(1, len(SCORED), figsize=(4.2 * len(SCORED), 3.8))
    for label, row in results.items():
        count = row["count"]
        subset_truth = {k: np.asarray(truth[k], float)[:count] for k in SCORED}
        subset_pred = {k: np.asarray(row["predictions"][k], float)[:count] for k in SCORED}
        d = deviations(subset_pred, subset_truth)
        for axis, name in zip(axes, SCORED):
            axis.scatter(subset_truth[name], d[name], s=9, alpha=0.7, label=label)
    for axis, name in zip(axes, SCORED):
        axis.axhline(0.0, color="k", lw=0.6)
        axis.set_xlabel(f"true {name}")
        axis.set_ylabel("fitted / true - 1" if name in ("r_eff", "n") else "fitted - true")
        if name == "r_eff":
            axis.set_xscale("log")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few galaxies")
    parser.add_argument("--count", type=int, default=None, help="galaxies for jaxgal, Imfit")
    parser.add_argument("--galsim-count", type=int, default=None)
    parser.add_argument("--pysersic-count", type=int, default=None)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--processes", type=int, default=2, help="pool size of the peers")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    count = args.count or (4 if args.quick else 200)
    galsim_count = min(args.galsim_count or (2 if args.quick else 40), count)
    pysersic_count = min(args.pysersic_count or (1 if args.quick else 8), count)
    warmup, samples = (200, 200) if args.quick else (500, 500)

    from jaxgal.fitting import METHODS

    data = build_test_set(count, args.seed)
    starts = default_starts(data)
    results, notes = {}, []
    # A pipeline loads the network once and fits batch after batch with it (`network=`):
    # its loading is reported apart, like the compilation.
    from jaxgal.networks.pretrained import pretrained

    clock = time.perf_counter()
    network = pretrained("kids", "galnet2")
    notes.append(f"GaLNet-2 loaded in {time.perf_counter() - clock:.2f} s (excluded)")
    for method in ("cnn", "cnn+refine", "refine", "hmc"):
        if method not in METHODS:
            notes.append(f"jaxgal {method!r} skipped: not in jaxgal.fitting.METHODS yet")
            continue
        if method == "hmc":  # as pysersic: its galaxies, its chain lengths; 2 chains for r-hat
            hmc = dict(key=0, num_warmup=warmup, num_samples=samples, num_chains=2)
            print(f"jaxgal hmc on {pysersic_count} galaxies ...", flush=True)
            results["jaxgal hmc"] = run_jaxgal(method, data, pysersic_count, **hmc)
            continue
        print(f"jaxgal {method} on {count} galaxies ...", flush=True)
        extra = dict(network=network) if method.startswith("cnn") else {}
        results[f"jaxgal {method}"] = run_jaxgal(method, data, **extra)
    peer_runs = (
        ("Imfit (pyimfit)", "pyimfit", lambda: run_classical(
            peers.imfit_fit, data, starts, count, args.processes)),
        ("GalSim + scipy", "galsim", lambda: run_classical(
            peers.galsim_scipy_fit, data, starts, galsim_count, args.processes)),
        ("pysersic NUTS", "pysersic", lambda: run_pysersic(
            data, pysersic_count, warmup, samples)),
    )  # fmt: skip
    for label, module, run in peer_runs:
        try:
            __import__(module)
        except ImportError:
            notes.append(f"{label} skipped: {module} is not installed (benchmarks/setup_peers.sh)")
            continue
        print(f"{label} ...", flush=True)
        results[label] = run()

    # GalSim's Sersic has n <= 6.2 (the GalSim fit's bounds are 0.35-6.2), jaxgal's and
    # Imfit's go to 8: on a faint galaxy whose best fit has n > 6.2 GalSim stops at its edge,
    # which is nearer a truth drawn from the KiDS prior's 0.5-6.2. Its accuracy is compared
    # with jaxgal's fit in the same space (both kept in the results).
    same_space = f"jaxgal cnn+refine, n in {GALSIM_N[0]}-{GALSIM_N[1]}"
    if "GalSim + scipy" in results and "jaxgal cnn+refine" in results:
        from jaxgal.fitting import SersicModel

        print(f"{same_space} on {galsim_count} galaxies ...", flush=True)
        results[same_space] = run_jaxgal(
            "cnn+refine",
            data,
            galsim_count,
            network=network,
            model=SersicModel(bounds={"n": GALSIM_N}),
        )

    rows = {}
    for label, row in results.items():
        row["score"] = score(row["predictions"], data["truth"], row["count"])
        rows[label] = row
    ratios = {}
    reference = results.get("jaxgal cnn+refine")
    for label, key in (("Imfit (pyimfit)", "imfit"), ("GalSim + scipy", "galsim_scipy")):
        if reference is None or label not in results:
            continue
        peer = results[label]
        same = score(reference["predictions"], data["truth"], peer["count"])
        extra = {}
        if key == "galsim_scipy" and same_space in results:
            extra = dict(  # jaxgal's n free up to 8, for the record
                jaxgal_n_to_8_nmad={k: v["nmad"] for k, v in same.items()},
                jaxgal_n_to_8_outliers={k: v["outlier_fraction"] for k, v in same.items()},
                accuracy_compared_with=same_space,
            )
            same = score(results[same_space]["predictions"], data["truth"], peer["count"])
        ratios[key] = dict(
            speedup=peer["seconds_per_galaxy"] / reference["seconds_per_galaxy"],
            floor=FLOORS[key],
            jaxgal_nmad_on_same_galaxies={k: v["nmad"] for k, v in same.items()},
            peer_nmad={k: v["nmad"] for k, v in peer["score"].items()},
            jaxgal_outliers_on_same_galaxies={k: v["outlier_fraction"] for k, v in same.items()},
            peer_outliers={k: v["outlier_fraction"] for k, v in peer["score"].items()},
            **extra,
        )
        ratios[key]["accuracy_equal_or_better"] = bool(
            all(
                same[k]["nmad"] <= 1.1 * peer["score"][k]["nmad"]
                and same[k]["outlier_fraction"] <= peer["score"][k]["outlier_fraction"]
                for k in SCORED
            )
        )
    hmc, nuts = results.get("jaxgal hmc"), results.get("pysersic NUTS")
    if hmc and nuts and "seconds_per_100_effective_samples" in hmc:
        ratios["hmc_vs_pysersic_per_effective_sample"] = dict(
            speedup=nuts["seconds_per_100_effective_samples"]
            / hmc["seconds_per_100_effective_samples"],
            floor=1.0,
        )

    table = markdown(rows)
    print(f"\nSersic fits of GalSim KiDS-like galaxies on {machine()['device']}, "
          f"{os.cpu_count()} cores\n")  # fmt: skip
    print(table)
    for key, ratio in ratios.items():
        verdict = "meets" if ratio["speedup"] >= ratio["floor"] else "BELOW"
        extra = ""
        if "accuracy_equal_or_better" in ratio:
            extra = ", accuracy " + ("equal or better" if ratio["accuracy_equal_or_better"]
                                     else "WORSE")  # fmt: skip
        print(f"  cnn+refine / hmc vs {key}: {ratio['speedup']:.2f}x (floor {ratio['floor']:g}x, "
              f"{verdict}){extra}")  # fmt: skip
    for note in notes:
        print("  note:", note)
    for label, row in results.items():
        if "compile_seconds" in row:
            print(f"  {label}: compiled in {row['compile_seconds']:.1f} s (excluded)")

    output = args.output or default_output(__file__, "compare_methods")
    if args.quick and args.output is None:
        output = output.with_name(output.stem + "_quick.json")

    def rounded(values, count):  # per galaxy, so a verdict can be traced to its galaxies
        return [round(float(v), 5) for v in np.asarray(values, float)[:count]]

    serialisable = {
        label: {k: v for k, v in row.items() if k != "predictions"}
        | {"predictions": {k: rounded(row["predictions"][k], row["count"]) for k in SCORED}}
        for label, row in rows.items()
    }
    result = dict(
        count=count,
        galsim_count=galsim_count,
        pysersic_count=pysersic_count,
        seed=args.seed,
        processes=args.processes,
        methods=serialisable,
        truth={k: rounded(data["truth"][k], count) for k in SCORED},
        ratios=ratios,
        notes=notes,
        on_accelerator=on_accelerator(),
        quick=args.quick,
        **machine(),
    )
    write_result(result, output)
    output.with_suffix(".md").write_text(table)
    figure(results, data["truth"], output.with_suffix(".png"))
    print(f"  written to {output.with_suffix('.md')} and {output.with_suffix('.png')}")
    return result


if __name__ == "__main__":
    main()
