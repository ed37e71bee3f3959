"""GaLNet CNNs (Flax NNX): labels, networks, training, evaluation, shipped weights."""

from jaxgal.networks.calibrate import fit_sigma_scale
from jaxgal.networks.galnet import GaLNet, gaussian_nll
from jaxgal.networks.labels import TARGETS, to_parameters, to_targets
from jaxgal.networks.pretrained import load_weights, predict, pretrained
from jaxgal.networks.train import TrainConfig, restore, train

__all__ = [
    "TARGETS",
    "GaLNet",
    "TrainConfig",
    "fit_sigma_scale",
    "gaussian_nll",
    "load_weights",
    "predict",
    "pretrained",
    "restore",
    "to_parameters",
    "to_targets",
    "train",
]
