"""Scoring predicted Sersic parameters against truths, as in Li et al. (2022).

Per parameter, the deviation is: magnitude, pred - true (mag); r_eff and n, pred / true - 1;
q, pred - true; pa, pred - true wrapped into [-90, 90) degrees (scored for true q < 0.8
only); x0, y0, pred - true (arcsec). For each: the bias (median deviation), the
scatter (normalised median absolute deviation, 1.4826 median |d - median d|), the outlier
fraction (|d| beyond `OUTLIER_LIMITS`: three times the accuracy bar of issue 3), and the
calibration of the predicted uncertainties: the fraction of truths within 1 and 2
predicted sigma (for r_eff and n in ln, where the network's Gaussian lives). Overall and
in bins of S/N and magnitude.
"""

from __future__ import annotations

import numpy as np

SCORED = ("magnitude", "r_eff", "n", "q", "pa", "x0", "y0")
RELATIVE = ("r_eff", "n")
OUTLIER_LIMITS = {
    "magnitude": 0.15,
    "r_eff": 0.3,
    "n": 0.6,
    "q": 0.15,
    "pa": 15.0,
    "x0": 0.1,
    "y0": 0.1,
}
PA_MAX_Q = 0.8  # pa is scored on galaxies flatter than this, where it is defined
SNR_BINS = (20.0, 50.0, 100.0, 300.0, np.inf)
MAGNITUDE_BINS = (17.0, 18.5, 19.5, 20.5, 21.5)


def nmad(values) -> float:
    """Normalised median absolute deviation: 1.4826 median |x - median x|."""
    values = np.asarray(values)
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def deviations(predicted: dict, truth: dict) -> dict[str, np.ndarray]:
    """The deviation of each scored parameter present in both dicts."""
    out = {}
    for name in (n for n in SCORED if n in predicted and n in truth):
        p, t = np.asarray(predicted[name], float), np.asarray(truth[name], float)
        if name == "pa":
            out[name] = np.mod(p - t + 90.0, 180.0) - 90.0
        else:
            out[name] = p / t - 1.0 if name in RELATIVE else p - t
    return out


def pulls(predicted: dict, truth: dict) -> dict[str, np.ndarray]:
    """(truth - prediction) / predicted sigma, in the space the network's Gaussian lives."""
    out = {}
    for name in SCORED:
        p, t = np.asarray(predicted[name], float), np.asarray(truth[name], float)
        error = np.asarray(predicted[name + "_err"], float)
        if name in RELATIVE:
            out[name] = np.log(t / p) / (error / p)
        elif name == "pa":
            out[name] = -(np.mod(p - t + 90.0, 180.0) - 90.0) / error
        else:
            out[name] = (t - p) / error
    return out


def score(predicted: dict, truth: dict, mask=None) -> dict[str, dict[str, float]]:
    """Bias, NMAD, outlier fraction and 1/2-sigma coverage per parameter (over `mask`)."""
    count = len(np.asarray(truth["magnitude"]))
    mask = np.ones(count, bool) if mask is None else np.asarray(mask, bool)
    d, z = deviations(predicted, truth), pulls(predicted, truth)
    result = {}
    for name in SCORED:
        selected = mask & (np.asarray(truth["q"]) < PA_MAX_Q) if name == "pa" else mask
        dev, pull = d[name][selected], z[name][selected]
        if dev.size == 0:
            result[name] = {"count": 0}
            continue
        result[name] = {
            "count": int(dev.size),
            "bias": float(np.median(dev)),
            "nmad": nmad(dev),
            "outlier_fraction": float(np.mean(np.abs(dev) > OUTLIER_LIMITS[name])),
            "within_1_sigma": float(np.mean(np.abs(pull) < 1.0)),
            "within_2_sigma": float(np.mean(np.abs(pull) < 2.0)),
        }
    return result


def evaluate(
    predicted: dict,
    truth: dict,
    snr,
    *,
    min_snr: float = 20.0,
    magnitude_bins=MAGNITUDE_BINS,
    snr_bins=SNR_BINS,
) -> dict:
    """The full report: overall (S/N >= `min_snr`), and binned by S/N and by magnitude
    (bin edges as given; the defaults suit the KiDS prior). An open upper edge is written
    as null in the report."""
    snr = np.asarray(snr, float)
    magnitude = np.asarray(truth["magnitude"], float)
    selected = snr >= min_snr
    report = {"min_snr": min_snr, "overall": score(predicted, truth, selected)}
    report["by_snr"] = [
        {
            "snr": [low, high if np.isfinite(high) else None],
            "scores": score(predicted, truth, (snr >= low) & (snr < high)),
        }
        for low, high in zip(snr_bins[:-1], snr_bins[1:])
    ]
    report["by_magnitude"] = [
        {
            "magnitude": [low, high],
            "scores": score(predicted, truth, selected & (magnitude >= low) & (magnitude < high)),
        }
        for low, high in zip(magnitude_bins[:-1], magnitude_bins[1:])
    ]
    return report


def plot_predictions(predicted: dict, truth: dict, path, *, mask=None, title: str = ""):
    """Prediction against truth for magnitude, r_eff, n, q (PNG at `path`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    count = len(np.asarray(truth["magnitude"]))
    mask = np.ones(count, bool) if mask is None else np.asarray(mask, bool)
    names = ("magnitude", "r_eff", "n", "q")
    figure, axes = plt.subplots(1, 4, figsize=(16, 4.2))
    for axis, name in zip(axes, names):
        t, p = np.asarray(truth[name])[mask], np.asarray(predicted[name])[mask]
        axis.scatter(t, p, s=2, alpha=0.4, color="k", rasterized=True)
        low, high = min(t.min(), p.min()), max(t.max(), p.max())
        axis.plot([low, high], [low, high], color="tab:red", lw=1)
        if name == "r_eff":
            axis.set_xscale("log")
            axis.set_yscale("log")
            ticks = [v for v in (0.05, 0.1, 0.2, 0.5, 1, 2, 4, 10) if low <= v <= high]
            for scale in (axis.xaxis, axis.yaxis):
                scale.set_minor_formatter(matplotlib.ticker.NullFormatter())
                scale.set_major_formatter(matplotlib.ticker.ScalarFormatter())
                scale.set_ticks(ticks)
        axis.set_xlabel(f"true {name}")
        axis.set_ylabel(f"predicted {name}")
        d = deviations(predicted, truth)[name][mask]
        axis.set_title(f"{name}: NMAD {nmad(d):.3f}, bias {np.median(d):+.3f}", fontsize=10)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def markdown_table(report: dict) -> str:
    """The overall and binned scores as Markdown tables (NMAD / bias / outliers / 1-sigma);
    pa (degrees) over galaxies with q < 0.8, so its counts are smaller."""
    names = ("magnitude", "r_eff", "n", "q", "pa")
    header = "| selection | N | " + " | ".join(names) + " |\n|---|---|" + "---|" * len(names)

    def row(label, scores):
        count = scores[names[0]].get("count", 0)
        cells = []
        for name in names:
            s = scores[name]
            if not s.get("count"):
                cells.append("-")
                continue
            cells.append(
                f"{s['nmad']:.3f} / {s['bias']:+.3f} / {100 * s['outlier_fraction']:.1f}% / "
                f"{100 * s['within_1_sigma']:.0f}%"
            )
        return f"| {label} | {count} | " + " | ".join(cells) + " |"

    lines = [header, row(f"S/N >= {report['min_snr']:g}", report["overall"])]
    for entry in report["by_snr"]:
        low, high = entry["snr"]
        label = f"S/N {low:g}-{high:g}" if high is not None else f"S/N >= {low:g}"
        lines.append(row(label, entry["scores"]))
    for entry in report["by_magnitude"]:
        low, high = entry["magnitude"]
        lines.append(row(f"mag {low:g}-{high:g} (S/N >= {report['min_snr']:g})", entry["scores"]))
    return "\n".join(lines)
