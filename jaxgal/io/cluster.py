"""A fit job's shards on a dask.distributed cluster: this machine's cores, or a running cluster.

    runner = dask_shard_runner(ClusterOptions(workers=2))      # a LocalCluster, made when needed
    run_fit_job(inputs, options, "catalog.fits", run_shards=runner)

`ClusterOptions()` makes a `LocalCluster` of worker processes, one per core, each with one
thread (and XLA held to one thread, so the processes do not fight for the cores), spawned,
never forked (JAX deadlocks in a forked child); `scheduler=` (an address) or
`scheduler_file=` joins a cluster that is already running; `slurm_config=` starts workers
as SLURM jobs through dask-jobqueue (README: "Survey scale"). The workers of a cluster made
here are held to one core each (`OneCorePerWorker`). The driver and the workers must
share the file system that holds the work directory.

Each shard is one dask task (`jaxgal.io.shard_worker.fit_shard_task`), which writes its own
part file. Lost workers are dask's business: a task whose worker died runs again
elsewhere, up to `distributed.scheduler.allowed-failures` times (set here for a
LocalCluster; a running scheduler keeps its own setting), and a task that raised is tried
again `retries` times. A shard that still fails is recorded as failed with the reason, and
the job goes on. At the end the driver prints what each worker did.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from distributed.diagnostics.plugin import WorkerPlugin

from jaxgal.io.shard_worker import fit_shard_task, shard_inputs
from jaxgal.io.shards import done_shards, record_failure

# XLA on one thread: a worker is one core's worth of work
SINGLE_THREADED_XLA = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


@dataclass(frozen=True)
class ClusterOptions:
    """Where the shards run: a LocalCluster of `workers` processes (None: one per core), or
    the running cluster whose scheduler is at `scheduler` or described by
    `scheduler_file`, or `jobs` SLURM jobs of workers started by dask-jobqueue as the YAML
    file `slurm_config` says (`slurm_cluster`). `allowed_failures`: times a shard may be on
    a worker that dies (set for a LocalCluster made here). `gpus`: the GPUs (CUDA device
    numbers) a LocalCluster's workers take, one each (`OneGpuPerWorker`); None finds this
    node's (`local_gpus`), () uses none. With GPUs the workers default to one per GPU."""

    workers: int | None = None
    scheduler: str | None = None
    scheduler_file: str | None = None
    slurm_config: str | None = None
    jobs: int = 1
    allowed_failures: int = 3
    gpus: tuple[str, ...] | None = None

    def __post_init__(self):
        given = [self.scheduler, self.scheduler_file, self.slurm_config]
        if sum(value is not None for value in given) > 1:
            raise ValueError("give one of --scheduler, --scheduler-file and --slurm")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"a cluster needs at least one worker, got {self.workers}")


def _worker_index(worker) -> int | None:
    """The number a worker's name ends with (a LocalCluster's 0, 1, ...; dask-jobqueue's
    "JOB-0", "JOB-1", ...), or None."""
    index = re.search(r"(\d+)$", str(worker.name))
    return None if index is None else int(index.group(1))


class OneCorePerWorker(WorkerPlugin):
    """A dask worker plugin: a single-threaded worker's process is held to one core, the
    `k`-th of the node's, `k` the number its name ends with (a LocalCluster's workers are
    0, 1, ...; dask-jobqueue's "JOB-0", "JOB-1", ... within a job). Parallel code in a
    worker (refinement's and HMC's threads on a CPU) takes the cores it may use, so without
    this every worker of a node would run a thread on every core."""

    name = "jaxgal-one-core-per-worker"

    def setup(self, worker):
        index = _worker_index(worker)
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        if index is None or worker.state.nthreads != 1 or len(cores) < 2:
            return
        core = cores[index % len(cores)]
        for thread in os.listdir("/proc/self/task"):  # the threads running, and to come
            try:
                os.sched_setaffinity(int(thread), {core})
            except OSError:  # a thread that ended meanwhile
                pass


class OneGpuPerWorker(WorkerPlugin):
    """A dask worker plugin: the `k`-th worker (`k` the number its name ends with, as for
    `OneCorePerWorker`) sees only the `k`-th of `gpus` (mod their number), through
    CUDA_VISIBLE_DEVICES, set before JAX starts its GPU backend in the worker (at its first
    computation, never at import), so that one process holds one GPU and workers never
    share one's memory. A worker whose JAX has already started cannot be moved: it keeps
    every GPU and says so in its log."""

    name = "jaxgal-one-gpu-per-worker"

    def __init__(self, gpus):
        self.gpus = tuple(str(gpu) for gpu in gpus)

    def setup(self, worker):
        import logging

        from jax._src import xla_bridge

        gpu = self.gpus[(_worker_index(worker) or 0) % len(self.gpus)]
        if xla_bridge.backends_are_initialized():
            logging.getLogger("distributed.worker").warning(
                "jaxgal: JAX already started in worker %s; it keeps every GPU", worker.name
            )
            return
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu


def local_gpus() -> tuple[str, ...]:
    """This node's GPUs as CUDA device numbers, without starting CUDA here (the driver
    would take a GPU's memory): CUDA_VISIBLE_DEVICES when set, else `nvidia-smi`'s list;
    () without NVIDIA GPUs."""
    import subprocess

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return tuple(d.strip() for d in visible.split(",") if d.strip() not in ("", "-1"))
    try:
        listed = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return ()
    if listed.returncode != 0:
        return ()
    return tuple(line.strip() for line in listed.stdout.splitlines() if line.strip())


def worker_environment() -> dict[str, str]:
    """The environment of a local worker process: XLA and the math libraries on one thread,
    and no GPU memory taken before it is needed (several processes may share a GPU)."""
    flags = f"{os.environ.get('XLA_FLAGS', '')} {SINGLE_THREADED_XLA}".strip()
    return {
        "XLA_FLAGS": flags,
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def local_cluster(workers: int, *, allowed_failures: int = 3, **kwargs):
    """A LocalCluster of `workers` spawned single-threaded processes (`kwargs` to it)."""
    import dask
    from dask.distributed import LocalCluster

    settings = {
        "distributed.worker.multiprocessing-method": "spawn",
        "distributed.scheduler.allowed-failures": allowed_failures,
    }
    kwargs.setdefault("dashboard_address", ":0")
    with dask.config.set(settings):
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            env=worker_environment(),
            **kwargs,
        )


def slurm_cluster(config_file, **kwargs):
    """A `dask_jobqueue.SLURMCluster` as the dask YAML `config_file` says: its
    `jobqueue: slurm:` settings (cores, memory, processes, walltime, queue, account,
    job-extra-directives, job-script-prologue, ...; `kwargs` override them) and any other
    dask settings in it (`distributed: scheduler: allowed-failures:`, ...) while the
    scheduler is made. No job is submitted until the cluster is scaled."""
    import copy

    import dask
    import yaml

    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise ValueError("SLURM needs dask-jobqueue: pip install 'jaxgal[cluster]'") from None
    try:
        loaded = yaml.safe_load(Path(config_file).read_text()) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"{config_file}: not a readable YAML file ({error})") from None
    section = loaded.get("jobqueue", {}).get("slurm")
    if not isinstance(section, dict):
        raise ValueError(f"{config_file}: no 'jobqueue: slurm:' settings")
    # the file's keys are dask's, the cluster's arguments their Python names ("name" is
    # the job's name there, `job_name` here)
    settings = {
        ("job_name" if key == "name" else key.replace("-", "_")): value
        for key, value in section.items()
        if value is not None
    }
    others = {key: value for key, value in loaded.items() if key != "jobqueue"}
    merged = dask.config.update(copy.deepcopy(dask.config.config), others, priority="new")
    with dask.config.set({key: merged[key] for key in others}):
        return SLURMCluster(**{**settings, **kwargs})


@contextmanager
def connect(options: ClusterOptions, log=print) -> Iterator:
    """A dask Client on the cluster `options` name (a LocalCluster made here is closed at
    the end); logs the workers and the dashboard's address."""
    from dask.distributed import Client

    cluster, gpus = None, ()
    if options.scheduler_file is not None:
        client = Client(scheduler_file=str(options.scheduler_file))
    elif options.scheduler is not None:
        client = Client(options.scheduler)
    elif options.slurm_config is not None:
        cluster = slurm_cluster(options.slurm_config)
        cluster.scale(jobs=options.jobs)
        client = Client(cluster)
    else:
        gpus = local_gpus() if options.gpus is None else tuple(options.gpus)
        workers = options.workers or len(gpus) or os.cpu_count() or 1
        cluster = local_cluster(workers, allowed_failures=options.allowed_failures)
        client = Client(cluster)
    try:
        if gpus:  # before anything runs on the workers
            client.register_plugin(OneGpuPerWorker(gpus))
            log(f"dask: {workers} workers on GPUs {', '.join(gpus)}, one each")
        if cluster is not None:  # a cluster made here: its workers are the node's cores
            client.register_plugin(OneCorePerWorker())
        log(describe_cluster(client, local=cluster))
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def describe_cluster(client, *, local=None) -> str:
    """The cluster in a line: what it is (`local`: the cluster object made here), its
    workers and threads, its dashboard's address."""
    info = client.scheduler_info()
    workers = info.get("workers", {})
    threads = sum(worker.get("nthreads", 0) for worker in workers.values())
    kind = f"a {type(local).__name__}" if local else f"the cluster at {info.get('address')}"
    dashboard = client.dashboard_link if "dashboard" in info.get("services", {}) else "none"
    return f"dask: {kind}, {len(workers)} workers, {threads} threads; dashboard {dashboard}"


def dask_shard_runner(cluster, *, retries: int = 2, records: list | None = None):
    """A `run_shards` for `jaxgal.io.fit_job.run_fit_job` that fits the shards on dask:
    `cluster` is a `ClusterOptions` (connected only when there are shards to fit) or a
    Client. `retries`: times a shard whose fit raised is tried again. Each shard's record
    (`fit_shard_task`) is appended to `records` when given."""

    def run(inputs, options, calibration, work_directory, ranges, progress, log):
        arguments = (inputs, options, calibration, work_directory, ranges)
        settings = dict(retries=retries, progress=progress, log=log, records=records)
        if not isinstance(cluster, ClusterOptions):
            return run_shards_on_dask(cluster, *arguments, **settings)
        if len(done_shards(work_directory, len(ranges))) == len(ranges):
            return None
        with connect(cluster, log) as client:
            return run_shards_on_dask(client, *arguments, **settings)

    return run


def run_shards_on_dask(
    client,
    inputs,
    options,
    calibration,
    work_directory,
    ranges,
    *,
    retries: int = 2,
    progress: bool = True,
    log=print,
    records: list | None = None,
) -> dict:
    """Submit every shard without a part file to `client`, follow them with a progress
    bar, record the shards that fail, and log and return the summary (`summarise`)."""
    import jax
    from dask.distributed import as_completed
    from tqdm.auto import tqdm

    done = done_shards(work_directory, len(ranges))
    if done:
        log(f"resuming: {len(done)} of {len(ranges)} shards already done in {work_directory}")
    todo = [shard for shard in range(len(ranges)) if shard not in done]
    shard_size = min(options.batch_size, inputs.count)
    x64 = bool(jax.config.jax_enable_x64)
    token = uuid.uuid4().hex[:8]
    # each task carries its own rows' inputs, no shared dependency: the scheduler hands
    # the shards to whichever worker is free
    futures = {
        client.submit(
            fit_shard_task, *shard_inputs(inputs, *ranges[shard]), shard, *ranges[shard],
            shard_size, options, calibration, str(work_directory), x64,
            key=f"jaxgal-shard-{shard:06d}-{token}", retries=retries, pure=False,
        ): shard
        for shard in todo
    }  # fmt: skip
    records = [] if records is None else records
    started = time.perf_counter()
    initial = sum(stop - start for shard, (start, stop) in enumerate(ranges) if shard in done)
    failed = 0
    with tqdm(total=inputs.count, initial=initial, unit="galaxy", disable=not progress) as bar:
        for finished, future in enumerate(as_completed(futures), start=1):
            shard = futures[future]
            start, stop = ranges[shard]
            try:
                record = future.result()
            except Exception as error:  # retries spent, or its workers kept dying
                record = {
                    "shard": shard,
                    "rows": stop - start,
                    "status": "failed",
                    "stage": "fit",
                    "reason": f"{type(error).__name__}: {error}",
                }
                record_failure(work_directory, shard, record)
            failed += record["status"] == "failed"
            records.append(record)
            bar.update(stop - start)
            bar.set_postfix(shards=f"{finished}/{len(todo)}", failed=failed, refresh=False)
    summary = summarise(records, time.perf_counter() - started)
    for line in format_summary(summary):
        log(line)
    return summary


def summarise(records: list[dict], wall_seconds: float) -> dict:
    """Galaxies fitted, failures, galaxies a second over the wall time, and per worker its
    shards, galaxies and rate over its busy time; the shares of the workers' busy time
    spent reading and writing (I/O), loading the network, compiling and fitting."""
    fitted = [record for record in records if record["status"] == "done"]
    failed = [record for record in records if record["status"] == "failed"]
    parts = ("read_s", "write_s", "load_s", "compile_s", "fit_s")
    totals = {name: sum(record.get(name, 0.0) for record in fitted) for name in parts}
    busy = totals["read_s"] + totals["write_s"] + totals["load_s"] + totals["fit_s"]
    workers = {}
    for record in fitted:
        worker = workers.setdefault(record["worker"], {"shards": 0, "galaxies": 0, "busy_s": 0.0})
        worker["shards"] += 1
        worker["galaxies"] += record["rows"]
        worker["busy_s"] += sum(record[name] for name in parts if name != "compile_s")
    for worker in workers.values():
        worker["rate"] = worker["galaxies"] / worker["busy_s"] if worker["busy_s"] else 0.0
    galaxies = sum(record["rows"] for record in fitted)
    share = (lambda seconds: seconds / busy) if busy else (lambda seconds: 0.0)
    return {
        "galaxies": galaxies,
        "shards": len(fitted),
        "skipped_shards": sum(record["status"] == "skipped" for record in records),
        "failed_shards": len(failed),
        "failed_rows": sum(record["rows"] for record in failed),
        "wall_s": wall_seconds,
        "rate": galaxies / wall_seconds if wall_seconds > 0 else 0.0,
        "workers": workers,
        "seconds": {**totals, "busy": busy},
        "shares": {
            "io": share(totals["read_s"] + totals["write_s"]),
            "load": share(totals["load_s"]),
            "compile": share(totals["compile_s"]),
            "fit": share(totals["fit_s"] - totals["compile_s"]),
        },
    }


def format_summary(summary: dict) -> list[str]:
    shares = summary["shares"]
    lines = [
        f"fitted {summary['galaxies']} galaxies in {summary['shards']} shards in "
        f"{summary['wall_s']:.1f} s: {summary['rate']:.1f} galaxies/s; failed: "
        f"{summary['failed_shards']} shards ({summary['failed_rows']} galaxies)",
        f"workers' time: I/O {shares['io']:.0%}, loading the network {shares['load']:.0%}, "
        f"compiling {shares['compile']:.0%}, fitting {shares['fit']:.0%}",
    ]
    for name, worker in sorted(summary["workers"].items()):
        lines.append(
            f"  worker {name}: {worker['shards']} shards, {worker['galaxies']} galaxies, "
            f"{worker['rate']:.1f} galaxies/s while busy ({worker['busy_s']:.1f} s)"
        )
    return lines
