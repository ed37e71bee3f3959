"""Training GaLNets on simulations drawn inside the jitted step.

The batch of step s is simulated from `fold_in(data_key, s)` inside the same jitted
function that takes the gradient step, so training never waits on a disk, never sees a
galaxy twice, and a run resumed from a checkpoint at step s sees exactly the batches an
uninterrupted run would: with the same seed, the same model. Parameters, optimiser state
and step go to orbax checkpoints (written to a temporary directory and renamed, so a run
killed mid-write leaves the previous checkpoint intact); metrics go to `metrics.jsonl`,
cut back to the checkpoint's step on resumption.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxgal._files import write_text_atomically
from jaxgal.networks.galnet import GaLNet, gaussian_nll_per_target
from jaxgal.networks.labels import TARGETS, to_targets
from jaxgal.simulate.generator import simulate_batch
from jaxgal.simulate.presets import get_preset


@dataclass(frozen=True)
class TrainConfig:
    """A training run: preset, network, optimiser (AdamW, warm-up then cosine decay to 1%
    of `learning_rate`, gradients clipped to norm 1), and how often to log and checkpoint."""

    preset: str = "kids"
    use_psf: bool = True
    widths: tuple[int, ...] = (16, 32, 64, 128)
    psf_widths: tuple[int, ...] = (16, 32)
    hidden: int = 256
    batch_size: int = 64
    steps: int = 20_000
    learning_rate: float = 1e-3
    warmup_steps: int = 500
    weight_decay: float = 1e-4
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 100

    def __post_init__(self):
        get_preset(self.preset)
        if min(self.batch_size, self.steps, self.checkpoint_every, self.log_every) < 1:
            raise ValueError("batch_size, steps, checkpoint_every and log_every must be >= 1")

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - fields
        if unknown:
            raise ValueError(f"unknown TrainConfig fields: {sorted(unknown)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        return cls(**values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def build_model(config: TrainConfig) -> GaLNet:
    return GaLNet(
        get_preset(config.preset),
        use_psf=config.use_psf,
        widths=config.widths,
        psf_widths=config.psf_widths,
        hidden=config.hidden,
        rngs=nnx.Rngs(config.seed),
    )


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    warmup = min(config.warmup_steps, config.steps // 10)
    schedule = optax.warmup_cosine_decay_schedule(
        0.0,
        config.learning_rate,
        warmup,
        max(config.steps, warmup + 1),
        end_value=0.01 * config.learning_rate,
    )
    return optax.chain(
        optax.clip_by_global_norm(1.0),
        optax.adamw(schedule, weight_decay=config.weight_decay),
    )


def make_train_step(config: TrainConfig, graphdef):
    """The jitted (params, opt_state, step) -> (params, opt_state, metrics)."""
    preset = get_preset(config.preset)
    optimizer = make_optimizer(config)
    data_key = jax.random.fold_in(jax.random.key(config.seed), 1)

    def loss_fn(params, images, psf_images, targets):
        mean, sigma = nnx.merge(graphdef, params)(images, psf_images)
        per_target = gaussian_nll_per_target(mean, sigma, targets)
        return jnp.mean(per_target), per_target

    @jax.jit
    def train_step(params, opt_state, step):
        batch = simulate_batch(jax.random.fold_in(data_key, step), preset, config.batch_size)
        targets = to_targets(batch.labels, preset)
        (loss, per_target), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, batch.images, batch.psf_images, targets
        )
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return params, opt_state, {"loss": loss, "nll": per_target}

    return train_step


def _checkpoint_manager(run_dir: Path):
    import orbax.checkpoint as ocp

    options = ocp.CheckpointManagerOptions(max_to_keep=2, create=True)
    return ocp.CheckpointManager(run_dir.resolve() / "checkpoints", options=options), ocp


def train(config: TrainConfig, run_dir, *, progress: bool = True, stop_after: int | None = None):
    """Train (or resume) the run in `run_dir` up to `config.steps`; return the model.

    If `run_dir` holds a checkpoint, training resumes from it (the config must match).
    `stop_after` stops after that many steps of this call
    (to train in chunks within a time limit).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / "config.json"
    if config_path.exists():
        saved = TrainConfig.from_dict(json.loads(config_path.read_text()))
        # steps too: the learning-rate schedule depends on it, so a resumed run with
        # other steps would not be the run it claims to continue
        if saved != config:
            raise ValueError(
                f"{run_dir} holds a run with another configuration: {saved}; "
                "use a new run directory"
            )
    write_text_atomically(config_path, json.dumps(config.to_dict(), indent=1))

    model = build_model(config)
    graphdef, params = nnx.split(model)
    optimizer = make_optimizer(config)
    state = {"params": params, "opt_state": optimizer.init(params), "step": jnp.asarray(0)}
    manager, ocp = _checkpoint_manager(run_dir)
    start = 0
    if manager.latest_step() is not None:
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
        state = manager.restore(manager.latest_step(), args=ocp.args.StandardRestore(abstract))
        start = int(state["step"])
    _truncate_metrics(run_dir / "metrics.jsonl", start)

    train_step = make_train_step(config, graphdef)
    end = config.steps if stop_after is None else min(config.steps, start + stop_after)
    params, opt_state = state["params"], state["opt_state"]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=config.steps, initial=start, desc=f"GaLNet {config.preset}")
    clock, clock_step = time.perf_counter(), start
    try:
        with open(run_dir / "metrics.jsonl", "a") as log:
            for step in range(start, end):
                params, opt_state, metrics = train_step(params, opt_state, jnp.asarray(step))
                done = step + 1
                if done % config.log_every == 0 or done == end:
                    loss = float(metrics["loss"])
                    if not jnp.isfinite(loss):
                        raise FloatingPointError(f"training loss is {loss} at step {done}")
                    now = time.perf_counter()
                    record = {
                        "step": done,
                        "loss": loss,
                        "nll": dict(zip(TARGETS, map(float, metrics["nll"]))),
                        "galaxies_per_second": (done - clock_step)
                        * config.batch_size
                        / max(now - clock, 1e-9),
                    }
                    clock, clock_step = now, done
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                    if bar is not None:
                        bar.set_postfix(loss=f"{loss:.3f}")
                if done % config.checkpoint_every == 0 or done == end:
                    saved = {"params": params, "opt_state": opt_state, "step": jnp.asarray(done)}
                    manager.save(done, args=ocp.args.StandardSave(saved))
                if bar is not None:
                    bar.update(1)
    finally:
        # a pending asynchronous save is finished (or the run's last checkpoint kept) even
        # when the loop stops on an error or an interrupt
        manager.wait_until_finished()
        manager.close()
        if bar is not None:
            bar.close()
    return nnx.merge(graphdef, params)


def restore(run_dir) -> tuple[GaLNet, TrainConfig, int]:
    """The model of a run's latest checkpoint, its config and step; reads, never writes."""
    run_dir = Path(run_dir)
    config = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    graphdef, params = nnx.split(build_model(config))
    import orbax.checkpoint as ocp

    with ocp.CheckpointManager(
        run_dir.resolve() / "checkpoints", options=ocp.CheckpointManagerOptions(read_only=True)
    ) as manager:
        step = manager.latest_step()
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {run_dir}")
        optimizer = make_optimizer(config)
        state = {"params": params, "opt_state": optimizer.init(params), "step": jnp.asarray(0)}
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
        state = manager.restore(step, args=ocp.args.StandardRestore(abstract))
    return nnx.merge(graphdef, state["params"]), config, step


def _truncate_metrics(path: Path, step: int):
    """Keep only the metrics of steps up to `step` (those a resumed run will not redo)."""
    if not path.exists():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = []
    for line in lines:
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (json.JSONDecodeError, KeyError):
            break  # a line cut by a kill: everything after it is dropped
    write_text_atomically(path, "".join(line + "\n" for line in kept))
