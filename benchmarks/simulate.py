"""Simulation throughput against a GaLNet-2 training step's consumption, in the same run.

The generator (`jaxgal.simulate.make_simulator`, KiDS preset: 64 x 64 cutouts, each galaxy
its own Sersic and sheared Moffat PSF, 25 x 25 PSF stamps, sky + Poisson noise) against a
training step of the shipped architecture (GaLNet-2, AdamW) fed a batch already in memory.
The ratio (generator galaxies per second / training-step galaxies per second) says whether
on-the-fly simulation keeps the accelerator busy: the floor is 5. Note that on a CPU both
share the same cores, so the fused training step runs at 1 / (1/simulate + 1/train).

    python benchmarks/simulate.py            # writes benchmarks/simulate.json (or
                                             # simulate_<platform>.json off the CPU)
    python benchmarks/simulate.py --quick
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import optax
from flax import nnx
from report import default_output, machine, on_accelerator, write_result

from jaxgal.networks.galnet import gaussian_nll
from jaxgal.networks.labels import to_targets
from jaxgal.networks.train import TrainConfig, build_model, make_optimizer
from jaxgal.simulate import get_preset, make_simulator


def rate(function, argument_for, count_per_call, repeats):
    """Galaxies per second of `function` after compilation (one warm-up call)."""
    jax.block_until_ready(function(argument_for(0)))
    start = time.perf_counter()
    for i in range(repeats):
        out = function(argument_for(i + 1))
    jax.block_until_ready(out)
    return repeats * count_per_call / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--preset", default="kids")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--train-batch", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    on_gpu = on_accelerator()
    batch = args.batch or (8192 if on_gpu else (128 if args.quick else 512))
    repeats = 3 if args.quick else 10
    preset = get_preset(args.preset)

    simulator = make_simulator(preset, batch)
    simulate_rate = rate(simulator, jax.random.key, batch, repeats)

    config = TrainConfig(preset=args.preset, batch_size=args.train_batch)
    graphdef, params = nnx.split(build_model(config))
    optimizer = make_optimizer(config)
    opt_state = optimizer.init(params)
    example = make_simulator(preset, args.train_batch)(jax.random.key(0))
    targets = to_targets(example.labels, preset)

    @jax.jit
    def train_step(state):
        params, opt_state = state

        def loss(p):
            mean, sigma = nnx.merge(graphdef, p)(example.images, example.psf_images)
            return gaussian_nll(mean, sigma, targets)

        grads = jax.grad(loss)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    state = (params, opt_state)
    train_rate = rate(lambda s: train_step(s), lambda i: state, args.train_batch, repeats * 4)
    ratio = simulate_rate / train_rate
    result = dict(
        preset=args.preset,
        stamp=list(preset.shape),
        psf_stamp=preset.psf_size,
        simulate_batch=batch,
        train_batch=args.train_batch,
        simulated_galaxies_per_second=simulate_rate,
        training_galaxies_per_second=train_rate,
        ratio_simulate_over_train=ratio,
        floor_ratio=5.0,
        gpu_floor_galaxies_per_second=1e6,
        **machine(),
        dtype=str(jnp.result_type(float)),
        quick=args.quick,
    )
    print(f"simulation benchmark ({args.preset}: 64x64 + PSF + noise) on {result['device']}")
    print(f"  generator                {simulate_rate:12.1f} galaxies/s (batch {batch})")
    print(f"  GaLNet-2 training step   {train_rate:12.1f} galaxies/s (batch {args.train_batch})")
    print(f"  ratio                    {ratio:12.2f} x (floor 5)")
    if not args.quick:
        write_result(result, args.output or default_output(__file__, "simulate"))
    return result


if __name__ == "__main__":
    main()
