"""Simulated galaxy populations: priors (and, to come, presets, noise and the generator)."""

from jaxgal.simulate.priors import SersicPrior

__all__ = ["SersicPrior"]
