"""Train a GaLNet on simulations of a survey preset, resumably, with one command.

    python experiments/train_galnet.py --preset kids --network galnet2 --run-dir runs/kids

trains GaLNet-2 for the KiDS preset into `runs/kids` (orbax checkpoints, metrics.jsonl,
config.json); run the same command again after a kill and it resumes from the last
checkpoint. `--export jaxgal/networks/weights/galnet2_kids` then fits the uncertainties'
calibration on fresh simulations (`jaxgal.networks.calibrate`) and writes the shipped
weights (an .npz and a .json recording this command) from the run's last checkpoint.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from jaxgal.networks.train import TrainConfig, train


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="kids")
    parser.add_argument("--network", choices=["galnet1", "galnet2"], default="galnet2")
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--steps", type=int, default=TrainConfig.steps)
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--learning-rate", type=float, default=TrainConfig.learning_rate)
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--checkpoint-every", type=int, default=TrainConfig.checkpoint_every)
    parser.add_argument(
        "--stop-after", type=int, default=None, help="train at most this many steps now"
    )
    parser.add_argument("--export", default=None, help="write shipped weights to this stem")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    config = TrainConfig(
        preset=args.preset,
        use_psf=args.network == "galnet2",
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
    )
    model = train(config, args.run_dir, progress=not args.no_progress, stop_after=args.stop_after)
    if args.export:
        from jaxgal.networks.calibrate import fit_sigma_scale
        from jaxgal.networks.pretrained import export_weights

        model.sigma_scale = fit_sigma_scale(model, config.seed)
        print("sigma calibration factors:", [round(v, 3) for v in model.sigma_scale])
        command = "python experiments/train_galnet.py " + shlex.join(
            a for a in (argv if argv is not None else sys.argv[1:])
        )
        export_weights(model, config, args.export, command=command, run_dir=args.run_dir)


if __name__ == "__main__":
    main()
