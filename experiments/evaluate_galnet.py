"""Score a GaLNet on the independent GalSim test set (experiments/kids_testset.py).

    python experiments/evaluate_galnet.py                       # the shipped KiDS GaLNet-2
    python experiments/evaluate_galnet.py --weights STEM --out DIR

Generates the test set if it is missing (4000 galaxies, seed 2022), predicts with the
network (PSF stamps as given, zero point 30), and writes to `--out`
(experiments/results/galnet2_kids by default): report.json (overall on S/N >= 20, and
binned by S/N and magnitude: bias, NMAD, outlier fraction, 1- and 2-sigma coverage),
report.md (the same as tables) and predictions_vs_truth*.png. Prints the accuracy bar of
issue 3 next to the figures.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from jaxgal.networks.evaluate import evaluate, markdown_table, plot_predictions
from jaxgal.networks.pretrained import load_weights, pretrained

BAR = {"magnitude": 0.05, "r_eff": 0.10, "n": 0.20, "q": 0.05}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--testset", default="out/kids_testset.npz")
    parser.add_argument("--weights", default=None, help="weights stem (default: shipped)")
    parser.add_argument("--out", default="experiments/results/galnet2_kids")
    parser.add_argument("--count", type=int, default=4000)
    args = parser.parse_args(argv)
    testset = Path(args.testset)
    if not testset.exists():
        from kids_testset import main as make_testset

        make_testset(["--count", str(args.count), "--out", str(testset)])
    data = np.load(testset)
    model = load_weights(args.weights) if args.weights else pretrained("kids", "galnet2")
    start = time.perf_counter()
    predicted = model.predict(
        data["images"], data["psf_images"], zero_point=float(data["zero_point"])
    )
    seconds = time.perf_counter() - start
    truth = {name: data[name] for name in ("magnitude", "r_eff", "n", "q", "pa", "x0", "y0")}
    report = evaluate(predicted, truth, data["snr"])
    report["testset"] = {"path": str(testset), "count": int(len(data["snr"]))}
    report["weights"] = args.weights or "shipped galnet2_kids"
    report["predict_seconds"] = seconds
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    table = markdown_table(report)
    (out / "report.md").write_text(
        "NMAD / bias / outlier fraction / within 1 sigma, per parameter\n\n" + table + "\n"
    )
    selected = data["snr"] >= 20
    plot_predictions(
        predicted,
        truth,
        out / "predictions_vs_truth.png",
        mask=selected,
        title="GaLNet-2 (KiDS) on the GalSim test set, S/N >= 20",
    )
    print(table)
    print("\naccuracy bar (S/N >= 20): NMAD, |bias| <= bar / 2, 1-sigma coverage 68 +- 5 %")
    for name, bar in BAR.items():
        s = report["overall"][name]
        ok = (
            s["nmad"] <= bar
            and abs(s["bias"]) <= 0.5 * bar
            and abs(s["within_1_sigma"] - 0.68) <= 0.05
        )
        print(
            f"  {name:9s} NMAD {s['nmad']:.3f} (bar {bar}) bias {s['bias']:+.4f} "
            f"1-sigma {100 * s['within_1_sigma']:.1f}% 2-sigma {100 * s['within_2_sigma']:.1f}% "
            f"outliers {100 * s['outlier_fraction']:.1f}%  {'meets' if ok else 'MISSES'}"
        )
    return report


if __name__ == "__main__":
    main()
