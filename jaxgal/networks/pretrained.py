"""Shipped GaLNet weights: export from a training run, load, and predict on cutouts.

A shipped model is two files in `jaxgal/networks/weights/`: `<network>_<preset>.npz` (the
parameters, float32, named by their path in the model) and `<network>_<preset>.json` (the
training configuration, the exact command that trained it, and its last metrics).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgal._files import write_text_atomically
from jaxgal.networks.galnet import GaLNet
from jaxgal.networks.labels import to_parameters
from jaxgal.render.psf_image import fit_stamp, normalise_psf_stamps, stack_psf_stamps

WEIGHTS_DIR = Path(__file__).with_name("weights")


def _parameter_name(path) -> str:
    """'galaxy/convs/0/kernel': the module path of a parameter, without the attribute
    names (such as `.value`) that Flax's variable containers add, which may change."""
    parts = []
    for key in path:
        if isinstance(key, jax.tree_util.DictKey):
            parts.append(str(key.key))
        elif isinstance(key, jax.tree_util.SequenceKey):
            parts.append(str(key.idx))
    return "/".join(parts)


def _named_leaves(model: GaLNet) -> tuple[object, object, list[str]]:
    graphdef, state = nnx.split(model)
    paths_and_leaves, _ = jax.tree_util.tree_flatten_with_path(state)
    names = [_parameter_name(path) for path, _ in paths_and_leaves]
    if len(set(names)) != len(names):
        raise RuntimeError("GaLNet parameter names are not unique; the weights format needs them")
    return graphdef, state, names


def export_weights(model: GaLNet, config, stem, *, command: str, run_dir=None):
    """Write `stem`.npz and `stem`.json (atomically) for a trained model."""
    from jaxgal.networks.train import TrainConfig

    if not isinstance(config, TrainConfig):
        raise TypeError("export_weights needs the run's TrainConfig")
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    _, state, names = _named_leaves(model)
    arrays = {
        name: np.asarray(leaf, np.float32) for name, leaf in zip(names, jax.tree.leaves(state))
    }
    temporary = stem.with_name(stem.name + ".tmp.npz")
    np.savez_compressed(temporary, **arrays)
    os.replace(temporary, stem.with_suffix(".npz"))
    metadata = {
        "config": config.to_dict(),
        "command": command,
        "sigma_scale": list(model.sigma_scale),
    }
    if run_dir is not None and (Path(run_dir) / "metrics.jsonl").exists():
        lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
        metadata["last_metrics"] = json.loads(lines[-1]) if lines else None
    write_text_atomically(stem.with_suffix(".json"), json.dumps(metadata, indent=1))


def load_weights(stem) -> GaLNet:
    """The GaLNet stored at `stem` (.npz + .json, as written by `export_weights`)."""
    from jaxgal.networks.train import TrainConfig, build_model

    stem = Path(stem)
    if not stem.with_suffix(".npz").exists():
        raise FileNotFoundError(f"no GaLNet weights at {stem.with_suffix('.npz')}")
    metadata = json.loads(stem.with_suffix(".json").read_text())
    config = TrainConfig.from_dict(metadata["config"])
    graphdef, state, names = _named_leaves(build_model(config))
    with np.load(stem.with_suffix(".npz")) as stored:
        if sorted(stored.files) != sorted(names):
            raise ValueError(f"{stem}.npz does not match the network its .json describes")
        leaves = []
        for name, leaf in zip(names, jax.tree.leaves(state)):
            if stored[name].shape != leaf.shape:
                raise ValueError(
                    f"{stem}.npz: {name} has shape {stored[name].shape}, not {leaf.shape}"
                )
            leaves.append(jnp.asarray(stored[name], leaf.dtype))
    state = jax.tree.unflatten(jax.tree.structure(state), leaves)
    model = nnx.merge(graphdef, state)
    model.sigma_scale = tuple(float(v) for v in metadata.get("sigma_scale", model.sigma_scale))
    return model


def pretrained(preset: str = "kids", network: str = "galnet2") -> GaLNet:
    """A shipped GaLNet: `network` "galnet2" (cutout + PSF) or "galnet1", for `preset`."""
    stem = WEIGHTS_DIR / f"{network}_{preset}"
    if not stem.with_suffix(".npz").exists():
        shipped = sorted(p.stem for p in WEIGHTS_DIR.glob("*.npz"))
        raise ValueError(f"no shipped {network} for preset {preset!r}; shipped: {shipped}")
    return load_weights(stem)


@nnx.jit
def _forward(model, images, psf_images):
    return model(images, psf_images)


def predict(model: GaLNet, images, psf_images=None, *, zero_point=None, batch_size: int = 512):
    """Sersic parameters and 1-sigma uncertainties for cutouts, as a dict of numpy arrays.

    `images`: (count, ny, nx) or one (ny, nx) cutout of the preset's shape, sky-subtracted,
    in image counts. `zero_point`: the images' magnitude zero point; if it differs from the
    preset's, the images are rescaled to the preset's (by 10^(0.4 (preset - given))) before
    the network sees them; magnitudes are the same either way, fluxes are returned in the
    images' units. The network was trained over the preset's range of sky noise
    (see its `depth`); images much noisier or deeper than that are outside its training.
    `psf_images` (GaLNet-2): (count, k, k), or one (k, k) for all, any odd k: cropped or
    zero-padded about the centre to the preset's `psf_size`, then normalised to sum 1.

    Returns magnitude, flux (in the images' units), r_eff, n, q, pa, x0, y0 (as `Sersic`:
    arcsec, degrees) and each with `_err`.
    """
    preset = model.preset
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or images.shape[1:] != tuple(preset.shape):
        raise ValueError(
            f"cutouts must be (count, {preset.shape[0]}, {preset.shape[1]}) for the "
            f"{preset.name} preset's GaLNet, got shape {images.shape}"
        )
    if not np.all(np.isfinite(images)):
        bad = int(np.sum(~np.all(np.isfinite(images), axis=(1, 2))))
        raise ValueError(f"{bad} cutouts hold NaN or infinite pixels; mask or inpaint them first")
    count = images.shape[0]
    if zero_point is None:
        zero_point = preset.zero_point
    images = images * np.float32(10.0 ** (0.4 * (preset.zero_point - zero_point)))
    stamps = _psf_stamps(model, psf_images, count)
    chunk = min(batch_size, 1 << max(count - 1, 0).bit_length())
    means, sigmas = [], []
    for start in range(0, count, chunk):
        part = images[start : start + chunk]
        psf_part = stamps[start : start + chunk]
        pad = chunk - part.shape[0]
        if pad:
            part = np.concatenate([part, np.zeros((pad, *part.shape[1:]), part.dtype)])
            psf_part = np.concatenate([psf_part, np.repeat(psf_part[-1:], pad, axis=0)])
        mean, sigma = _forward(model, jnp.asarray(part), jnp.asarray(psf_part))
        means.append(np.asarray(mean)[: chunk - pad])
        sigmas.append(np.asarray(sigma)[: chunk - pad])
    result = to_parameters(np.concatenate(means), np.concatenate(sigmas), preset)
    result = {name: np.asarray(value) for name, value in result.items()}
    result["flux"] = 10.0 ** (-0.4 * (result["magnitude"] - zero_point))
    result["flux_err"] = result["flux"] * 0.4 * np.log(10.0) * result["magnitude_err"]
    return result


def _psf_stamps(model: GaLNet, psf_images, count: int) -> np.ndarray:
    size = model.preset.psf_size
    if psf_images is None:
        if model.use_psf:
            raise ValueError("GaLNet-2 needs psf_images: one PSF stamp per cutout, or one for all")
        return np.zeros((count, size, size), np.float32)
    stamps = stack_psf_stamps(psf_images, count, np.float32)
    if not np.all(np.isfinite(stamps)):
        raise ValueError("PSF stamps must be finite")
    # as for training PSFs (`PSFBank`): negative pixels are cut, each stamp sums to 1
    return normalise_psf_stamps(np.asarray(fit_stamp(jnp.asarray(stamps), size)))
