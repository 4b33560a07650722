"""`nst-fast run --ray ADDRESS`: the same job on a Ray cluster, through Ray Data.

The driver plans as the local runner does (api.run_folder: walk, mirror tree, skips, collisions)
and hands Ray one (input, output) record per file to do, never pixels. A pool of actors
(`map_batches` with the callable class StylizeFiles) each builds one Stylizer for its life and
runs every batch of records through the local runner's own pipeline (batch.feed, batch.Pipeline):
decode, bucket by shape, run, encode, write to a temporary name beside the output and rename. Each
record comes back as one status row, so a bad file is a failed row: an exception would make Ray
drop the whole block (and end the run). The driver turns the rows back into the plan's jobs, so
the summary, the `error:` lines, the exit status and the report are the local runner's.

The records are paths or URIs (uris.py: s3://, gs://, file://, through pyarrow filesystems): an
actor reads its inputs' bytes and writes its outputs through the filesystem a URI names. Every
node needs the same nst-fast, and the inputs and outputs under the same paths (a shared
filesystem) or URIs it can reach (credentials in its environment); Ray itself is imported only
here, on this path.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm import tqdm

from . import manifest
from .batch import Job, Pipeline, Summary, done_line, feed, one_line, prepare, reason, remove_partial_files
from .errors import NSTError
from .interrupts import sigterm_as_interrupt
from .uris import URIPath, location

THREADS_PER_ACTOR = 2  # decode and encode threads in each actor: the local runner's default
# Files per actor call: enough for full engine batches of each shape, few enough that the progress
# bar moves and an actor lost mid-call costs little work to redo.
MAX_FILES_PER_CALL = 32
REFUSED = "refused"  # a row's status when its actor could not build the Stylizer


class _NoBar:
    """Pipeline reports to a bar; inside an actor the driver's bar does that, from the rows."""

    def write(self, *args, **kwargs) -> None:
        pass

    def update(self, n: int = 1) -> None:
        pass


class StylizeFiles:
    """A Ray Data actor: one Stylizer (engine, graphs, style statistics) for the actor's life, and
    per call a batch of records stylised and written, returned as one status row per file.
    `made`: (the output folder, encoded; the settings), the manifest it records once its Stylizer
    has loaded."""

    def __init__(self, style, options: dict, quality: int, keep_exif: bool, made: tuple[bytes, dict]):
        import ray

        from .api import Stylizer

        self.quality, self.keep_exif = quality, keep_exif
        self.node = ray.get_runtime_context().get_node_id()  # for the driver's closing line
        self.backend, self.stylizer = "", None
        try:
            self.stylizer, self.refused = Stylizer(style, **options).open(), ""
            self.backend = str(self.stylizer.backend.backend)  # without what was passed over, and why
            # As the local runner: the manifest once the weights have loaded, before any output (if
            # every actor refuses, none claims the folder). Each actor writes the same one.
            manifest.record(_decoded(made[0]), made[1])
        except (NSTError, OSError) as e:
            # Weights that do not load, an engine missing on this node, an output folder it cannot
            # write: said by the first row, so the driver stops with this one line (raised here,
            # Ray would retry and then print its tracebacks).
            self.refused = f"{e} (on the node at {ray.util.get_node_ip_address()})"
            if self.stylizer is not None:
                self.stylizer.close()

    def __call__(self, records: dict) -> dict:
        jobs = [Job(_decoded(src), _decoded(dst)) for src, dst in zip(records["input"], records["output"])]
        try:
            if self.refused:
                for job in jobs:
                    job.status, job.error = REFUSED, one_line(self.refused)
            else:
                self._stylize(jobs)
        except Exception as e:  # a bug here must fail these files, not the block (and so the run)
            for job in jobs:
                if job.status == "pending":
                    job.status, job.error = "failed", one_line(f"{job.src}: {reason(e)}")
        return {"index": records["index"], "status": [j.status for j in jobs], "error": [j.error for j in jobs],
                "seconds": [j.seconds for j in jobs], "note": [j.note for j in jobs], "node": [self.node] * len(jobs),
                "backend": [self.backend] * len(jobs)}

    def _stylize(self, jobs: list[Job]) -> None:
        s = self.stylizer
        limit = 2 * THREADS_PER_ACTOR * s.batch_size  # as batch.run: images waiting to run, to be written
        with ThreadPoolExecutor(THREADS_PER_ACTOR) as decoders, ThreadPoolExecutor(THREADS_PER_ACTOR) as encoders:
            pipeline = Pipeline(s.runner, encoders, limit, s.batch_size, self.quality, s.tile_size, _NoBar(),
                                verbose=False)
            feed(pipeline, decoders, jobs, s.max_size, self.keep_exif, ahead=limit)
            pipeline.flush_all()
        # leaving the pools waited for the last writes


def run(jobs: list[Job], address: str, style, options: dict, *, made_with: tuple, quality: int = 95,
        keep_exif: bool = False, workers: int | None = None, progress: bool = True, verbose: bool = False,
        started: float | None = None) -> Summary:
    """batch.run's counterpart on the Ray cluster at `address` (local: a Ray started for this run;
    auto: the running cluster, or RAY_ADDRESS; see check_address). `style` and `options` are
    Stylizer's, built in every actor. `made_with`: (the output folder, the settings its manifest
    records). `workers`: actors (default: one per GPU, else sized to the cluster's CPUs)."""
    summary = Summary(jobs)
    todo = prepare(jobs, verbose)
    start = started if started is not None else time.perf_counter()
    made = (_encoded(made_with[0].resolve()), made_with[1])  # an actor's working folder is not the driver's
    try:
        if todo:
            _run_on_ray(todo, address, style, options, quality, keep_exif, made, workers, progress, verbose)
    finally:  # also after Ctrl-C, which stops the actors mid-write
        remove_partial_files(todo)  # an actor lost mid-write leaves its temporary file
    summary.wall = time.perf_counter() - start
    return summary


def _encoded(path) -> bytes:
    """A record's path or URI as bytes: a local file name need not be UTF-8 (a URI is ASCII). Local
    paths are made absolute: an actor on another node does not share the driver's working folder."""
    return os.fsencode(str(path if isinstance(path, URIPath) else Path(path).absolute()))


def _decoded(value: bytes):
    return location(os.fsdecode(value))  # a Path stays a Path: its str never holds '://'


def _run_on_ray(todo: list[Job], address: str, style, options: dict, quality: int, keep_exif: bool,
                made: tuple, workers: int | None, progress: bool, verbose: bool) -> None:
    with _connected(address) as ray:
        actors, resources = _pool_size(ray, options.get("device", "auto"), workers)
        per_call = min(MAX_FILES_PER_CALL, max(options.get("batch_size", 4), math.ceil(len(todo) / (4 * actors))))
        actors = min(actors, math.ceil(len(todo) / per_call))  # an idle actor would still load everything
        if progress:
            print(f"ray: {actors} actor(s), each {_described(resources)}, on {address}", file=sys.stderr, flush=True)
        rows = _dataset(ray, todo, style, options, quality, keep_exif, made, per_call, actors, resources).iter_rows()
        nodes, backends = _collect(rows, todo, progress, verbose)
        if progress:
            print(f"ray: the files ran on {len(nodes)} node(s); backend: {'; '.join(sorted(backends))}",
                  file=sys.stderr, flush=True)


def _dataset(ray, todo: list[Job], style, options: dict, quality: int, keep_exif: bool, made: tuple,
             per_call: int, actors: int, resources: dict):
    """The records (paths and URIs as bytes, _encoded) through the actor pool, in blocks of
    `per_call`, one actor call each."""
    records = [{"index": i, "input": _encoded(j.src), "output": _encoded(j.dst)} for i, j in enumerate(todo)]
    return ray.data.from_items(records, override_num_blocks=math.ceil(len(todo) / per_call)).map_batches(
        StylizeFiles, fn_constructor_args=(style, {**options, "progress": False}, quality, keep_exif, made),
        batch_size=per_call, batch_format="numpy", compute=ray.data.ActorPoolStrategy(size=actors), **resources)


def _collect(rows, todo: list[Job], progress: bool, verbose: bool) -> tuple[set[str], set[str]]:
    """Each row's outcome into its job, with the local runner's lines and one bar; returns the
    nodes that ran them and the backends they ran on."""
    failed, nodes, backends = 0, set(), set()
    with tqdm(total=len(todo), unit="img", desc="stylising (ray)", disable=None if progress else True) as bar:
        for row in rows:
            if row["status"] == REFUSED:
                raise NSTError(str(row["error"]))
            nodes.add(row["node"])
            backends.add(str(row["backend"]))
            job = todo[int(row["index"])]
            job.status, job.error, job.seconds, job.note = (str(row["status"]), str(row["error"]),
                                                            float(row["seconds"]), str(row["note"]))
            if job.status == "failed":
                failed += 1
                bar.write(f"error: {job.error}", file=sys.stderr)
                bar.set_postfix(failed=failed, refresh=False)
            elif verbose:
                bar.write(done_line(job), file=sys.stdout)
            bar.update(1)
    return nodes, backends


def _pool_size(ray, device: str, workers: int | None) -> tuple[int, dict]:
    """How many actors, and what each reserves: a GPU each where the cluster has GPUs (and
    --device is not cpu); otherwise the cluster's CPUs shared out, by default one actor per node's
    worth of cores (engines use every core of their machine)."""
    gpus = 0 if device == "cpu" else int(ray.cluster_resources().get("GPU", 0))
    if device == "cuda" and not gpus:
        raise NSTError("--device cuda: the Ray cluster has no GPUs")
    if gpus:
        if workers and workers > gpus:
            raise NSTError(f"--workers {workers}: the Ray cluster has {gpus} GPU(s), one per actor")
        return workers or gpus, {"num_gpus": 1, "num_cpus": 1}
    nodes = [n["Resources"].get("CPU", 0) for n in ray.nodes() if n["Alive"]]
    nodes = [cpus for cpus in nodes if cpus > 0]
    if not nodes:
        raise NSTError("the Ray cluster has no CPUs to run on")
    if workers:
        return workers, {"num_cpus": sum(nodes) / workers}
    per_actor = min(nodes)
    return int(sum(cpus // per_actor for cpus in nodes)), {"num_cpus": per_actor}


def _described(resources: dict) -> str:
    return ", ".join(f"{value:g} {name.removeprefix('num_')[:-1].upper()}" for name, value in resources.items())


def check_address(address: str) -> None:
    """Before any work: Ray is installed and `address` is one Ray Data can run from."""
    target = os.environ.get("RAY_ADDRESS", "") if address == "auto" else address
    if target.startswith("ray://"):  # checked: the streaming executor needs a core worker, which a client lacks
        raise NSTError(f"--ray {address}: {target} is a Ray Client address, and Ray Data does not run through Ray "
                       "Client (ray-project/ray#48682); run the command on a node of the cluster with --ray auto, "
                       "or submit it there: ray job submit --address http://HEAD:8265 -- nst-fast run ... --ray auto")
    try:
        import ray  # noqa: F401
    except ImportError:
        raise NSTError("--ray needs Ray Data: pip install 'nst-fast[ray]'") from None


@contextlib.contextmanager
def _connected(address: str):
    """Ray connected to `address` for the block, Ray Data kept quiet. A Ray started here stops at
    the end; one already running in this process is used and left running."""
    import ray
    # Ray's core writes its own notices straight to stderr (e.g. that actors keep constructor
    # arguments in the object store); errors that matter reach the driver as exceptions.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    owned = not ray.is_initialized()
    if owned:
        local = {"include_dashboard": False} if address == "local" else {}
        try:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR, **local)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise NSTError(f"--ray {address}: cannot connect ({one_line(e)})") from None
    try:
        # ray.init puts its own SIGTERM handler in (it ends the process at once): SIGTERM stops the
        # run as Ctrl-C does, with the summary and the report
        with _ray_data_quiet(ray), sigterm_as_interrupt():
            yield ray
    except ray.exceptions.RayError as e:
        raise NSTError(f"the Ray job failed ({one_line(str(e).splitlines()[0] if str(e) else type(e).__name__)}); "
                       "the outputs written so far are complete: run the same command again to finish") from None
    finally:
        if owned:
            ray.shutdown()


@contextlib.contextmanager
def _ray_data_quiet(ray):
    """Ray Data's progress bars and console log lines off for the block (they still go to its log
    files), as they were after: the driver's bar says what there is to say."""
    context = ray.data.DataContext.get_current()  # imports ray.data, which sets up its log handlers
    before = context.enable_progress_bars, context.print_on_execution_start
    consoles = [h for h in logging.getLogger("ray.data").handlers
                if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
    levels = [h.level for h in consoles]
    context.enable_progress_bars = context.print_on_execution_start = False
    for handler in consoles:
        handler.setLevel(logging.ERROR)
    try:
        yield
    finally:
        context.enable_progress_bars, context.print_on_execution_start = before
        for handler, level in zip(consoles, levels):
            handler.setLevel(level)
