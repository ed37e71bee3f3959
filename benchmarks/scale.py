"""Survey scale, measured: `jaxgal fit` on 1 and on 2 single-threaded dask workers, same inputs.

    python benchmarks/scale.py                      # 128 KiDS cutouts, cnn+refine, shards of 8
    python benchmarks/scale.py --count 32 --shard-size 4     # a quick look

Simulates `count` KiDS-like cutouts (`jaxgal simulate`'s FITS cubes), then for each number
of workers starts the LocalCluster of `jaxgal fit --workers N` (spawned processes, one
thread and one core each), has every worker fit one warm-up shard (its compilation and the
network's loading, timed on each worker), and fits every cutout as a `jaxgal fit` job on
it (`run_fit_job` with `dask_shard_runner`), timed from the first shard handed out to the
last part written. The
scaling is the 2-worker rate over the 1-worker rate (floor 1.6). The time of each worker
goes to I/O (reading the cutouts, writing the parts), loading the network, compiling (the
warm-up) and fitting; the scheduler's own cost is timed on empty tasks.

The projection to N nodes: N x (workers a node) x the rate of one worker x the 2-worker
efficiency, at most (a survey's shard size, 256) / (the scheduler's seconds a task)
galaxies a second. The
figure for 10^8 galaxies on 100 GPU nodes is a projection unless it was measured on a GPU:
with no GPU, it takes `--gpu-speedup` (a GPU worker's rate over a CPU core's, an
assumption) and says so. Writes benchmarks/scale.json and benchmarks/scale.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # the workers need the GPU

from report import machine, write_result  # noqa: E402

from jaxgal.io.cluster import ClusterOptions, connect, dask_shard_runner  # noqa: E402
from jaxgal.io.fit_job import FitOptions, resolve_calibration, run_fit_job  # noqa: E402
from jaxgal.io.inputs import open_fit_inputs  # noqa: E402
from jaxgal.io.shard_worker import fit_shard_task  # noqa: E402

SURVEY_GALAXIES = 1e8
NODES = 100


def simulate_inputs(count: int, directory: Path):
    from jaxgal.io.simulated_set import write_simulated_set
    from jaxgal.simulate.presets import get_preset

    write_simulated_set(get_preset("kids"), count, 0, directory, batch_size=min(count, 64))
    return open_fit_inputs(
        directory / "cutouts.fits", psf=directory / "psfs.fits", noise=directory / "sigma.fits"
    )


def empty_task(value):
    return value


def scheduler_seconds_per_task(client, tasks: int = 2000) -> float:
    """Wall seconds a task of the scheduler's and the workers' bookkeeping, on empty tasks."""
    client.gather(client.map(empty_task, range(100), pure=False))
    started = time.perf_counter()
    client.gather(client.map(empty_task, range(tasks), pure=False))
    return (time.perf_counter() - started) / tasks


def measure(workers: int, inputs, options: FitOptions, scratch: Path) -> dict:
    import jax

    calibration = resolve_calibration(inputs.cutouts, options)
    shard_size = min(options.batch_size, inputs.count)
    started = time.perf_counter()
    with connect(ClusterOptions(workers=workers), log=lambda line: print(f"    {line}")) as client:
        client.wait_for_workers(workers)
        startup = time.perf_counter() - started
        # every worker compiles (and loads the network) on a warm-up shard of its own
        x64 = bool(jax.config.jax_enable_x64)
        warm_up = {}
        for number, address in enumerate(client.scheduler_info()["workers"]):
            warm = scratch / f"warm-{workers}-{number}"
            warm.mkdir()
            warm_up[address] = client.submit(
                fit_shard_task, inputs, 0, 0, 0, 1, shard_size, options, calibration,
                str(warm), x64, workers=[address], pure=False,
            )  # fmt: skip
        warm_up = dict(zip(warm_up, client.gather(list(warm_up.values())), strict=True))
        records = []
        output = scratch / f"catalog-{workers}.fits"
        began = time.perf_counter()
        run_fit_job(
            inputs,
            options,
            output,
            run_shards=dask_shard_runner(client, records=records),
            progress=False,
            log=lambda line: print(f"    {line}"),
        )
        wall = time.perf_counter() - began
        overhead = scheduler_seconds_per_task(client)
    fitted = [record for record in records if record["status"] == "done"]
    seconds = {
        "io": sum(r["read_s"] + r["write_s"] for r in fitted),
        "load": sum(r["load_s"] for r in warm_up.values()),
        "compile": sum(r["fit_s"] for r in warm_up.values()),
        "fit": sum(r["fit_s"] for r in fitted),
    }
    total = sum(seconds.values())
    return {
        "workers": workers,
        "galaxies": sum(r["rows"] for r in fitted),
        "shards": len(fitted),
        "startup_s": startup,
        "warm_up_s_per_worker": {name: r["fit_s"] + r["load_s"] for name, r in warm_up.items()},
        "wall_s": wall,
        "rate": inputs.count / wall,
        "compile_in_job_s": sum(r["compile_s"] for r in fitted),
        "seconds": seconds,
        "shares": {name: value / total for name, value in seconds.items()},
        "scheduler_s_per_task": overhead,
    }


def projection(one: dict, two: dict, shard_size: int, gpu_speedup: float, measured_gpu: bool):
    """Galaxies a second on N nodes with shards of `shard_size`, from the measured runs."""
    rate_one = one["rate"]
    efficiency = two["rate"] / (2 * rate_one)
    overhead = min(one["scheduler_s_per_task"], two["scheduler_s_per_task"])
    scheduler_limit = shard_size / overhead

    def rate(nodes, workers_per_node, worker_rate):
        return min(nodes * workers_per_node * worker_rate * efficiency, scheduler_limit)

    rows = []
    for nodes in (1, 10, 100, 1000):
        galaxies_per_second = rate(nodes, 32, rate_one)
        rows.append(
            {
                "nodes": nodes,
                "kind": "CPU node, 32 cores",
                "galaxies_per_s": galaxies_per_second,
                "days_for_1e8": SURVEY_GALAXIES / galaxies_per_second / 86400,
            }
        )
    gpu_rate = rate(NODES, 4, rate_one * gpu_speedup)
    return {
        "efficiency_2_workers": efficiency,
        "scheduler_s_per_task": overhead,
        "scheduler_limit_galaxies_per_s": scheduler_limit,
        "cpu_nodes": rows,
        "gpu_headline": {
            "nodes": NODES,
            "gpus_per_node": 4,
            "gpu_worker_rate": rate_one * gpu_speedup,
            "gpu_speedup_assumed": None if measured_gpu else gpu_speedup,
            "galaxies_per_s": gpu_rate,
            "hours_for_1e8": SURVEY_GALAXIES / gpu_rate / 3600,
            "measured": measured_gpu,
        },
    }


def markdown(result: dict) -> str:
    one, two = result["runs"]
    p = result["projection"]
    lines = [
        f"Survey scale ({result['count']} KiDS cutouts, {result['method']}, shards of "
        f"{result['shard_size']}, {result['machine']['cpu_count']} cores, "
        f"{result['machine']['device']})",
        "",
        "| workers | galaxies/s | speed-up | I/O | loading | compiling | fitting | start-up s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in (one, two):
        shares = run["shares"]
        lines.append(
            f"| {run['workers']} | {run['rate']:.2f} | {run['rate'] / one['rate']:.2f}x | "
            f"{shares['io']:.1%} | {shares['load']:.1%} | {shares['compile']:.1%} | "
            f"{shares['fit']:.1%} | {run['startup_s']:.1f} |"
        )
    gpu = p["gpu_headline"]
    how = "measured" if gpu["measured"] else (
        f"projected: no GPU here; a GPU worker assumed {gpu['gpu_speedup_assumed']:g}x a CPU core"
    )  # fmt: skip
    lines += [
        "",
        f"Scheduler: {1e3 * p['scheduler_s_per_task']:.2f} ms a task, so at most "
        f"{p['scheduler_limit_galaxies_per_s']:.3g} galaxies/s with shards of "
        f"{result['projection_shard_size']}; 2-worker efficiency "
        f"{p['efficiency_2_workers']:.2f}. Projected (32 single-threaded workers a node):",
        "",
        "| nodes | galaxies/s | days for 10^8 |",
        "|---|---|---|",
    ]
    for row in p["cpu_nodes"]:
        lines.append(
            f"| {row['nodes']} x {row['kind']} | {row['galaxies_per_s']:.3g} | "
            f"{row['days_for_1e8']:.3g} |"
        )
    lines += [
        "",
        f"10^8 galaxies on {gpu['nodes']} nodes of {gpu['gpus_per_node']} GPUs: "
        f"{gpu['hours_for_1e8']:.3g} hours ({how}).",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=128)
    parser.add_argument("--shard-size", type=int, default=8)
    parser.add_argument("--method", default="cnn+refine")
    parser.add_argument(
        "--projection-shard-size", type=int, default=256, help="shards of a survey (--batch-size)"
    )
    parser.add_argument(
        "--gpu-speedup", type=float, default=100.0, help="assumed: a GPU worker over a CPU core"
    )
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("scale.json"))
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="jaxgal-scale-"))
    try:
        print(f"simulating {args.count} KiDS cutouts in {scratch}")
        inputs = simulate_inputs(args.count, scratch / "inputs")
        options = FitOptions(method=args.method, batch_size=args.shard_size)
        runs = []
        for workers in (1, 2):
            print(f"  {workers} worker(s)")
            runs.append(measure(workers, inputs, options, scratch))
            print(f"    {runs[-1]['rate']:.2f} galaxies/s")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    info = machine()
    result = {
        "command": " ".join(["python", *sys.argv]),
        "count": args.count,
        "method": args.method,
        "shard_size": args.shard_size,
        "projection_shard_size": args.projection_shard_size,
        "machine": info,
        "runs": runs,
        "speedup_2_workers": runs[1]["rate"] / runs[0]["rate"],
        "floor": 1.6,
        "projection": projection(
            runs[0],
            runs[1],
            args.projection_shard_size,
            args.gpu_speedup,
            not info["device"].startswith("cpu"),
        ),
    }
    table = markdown(result)
    print(table)
    write_result(result, args.output)
    args.output.with_suffix(".md").write_text(table)


if __name__ == "__main__":
    main()
