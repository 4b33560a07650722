"""`nst-fast run`: turn files and folders into stylised images, losing nothing.

walk -> decode (threads) -> bucket by padded shape -> batches -> runner -> encode (threads) ->
write to a temporary name and rename. A file that fails is reported with its path and reason and
the run goes on; an output that already exists is skipped, so a rerun resumes.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from .errors import ImageError
from .images import IMAGE_EXTENSIONS, crop_to, load_image, output_suffix, pad_to_multiple, save_image
from .runners import Runner


@dataclass
class Job:
    src: Path
    dst: Path
    status: str = "pending"  # done | skipped | failed
    error: str = ""
    seconds: float = 0.0


@dataclass
class Summary:
    jobs: list[Job] = field(default_factory=list)
    wall: float = 0.0

    def count(self, status: str) -> int:
        return sum(j.status == status for j in self.jobs)

    def line(self) -> str:
        done = self.count("done")
        rate = done / self.wall if self.wall > 0 else 0.0
        return (f"{done} done, {self.count('skipped')} skipped, {self.count('failed')} failed "
                f"in {self.wall:.1f} s ({rate:.2f} images/s)")


def plan(paths: list[Path], out: Path, fmt: str | None = None, overwrite: bool = False) -> list[Job]:
    """One job per input image. Folders are walked recursively and mirrored under `out`; the output
    folder itself is never walked. Existing outputs are 'skipped' unless `overwrite`."""
    out = out.resolve()
    # With several folders, each gets its own subfolder so equal names in them do not collide.
    found = [(src, Path(root.name) / rel if len(paths) > 1 and root.is_dir() else rel)
             for root in paths for src, rel in _walk(root, out)]
    resolved = [src.resolve() for src, _ in found]
    inputs = set(resolved)
    jobs, owners, seen = [], {}, set()
    for (src, rel), real in zip(found, resolved):
        if real in seen:  # the same file given twice is done once
            continue
        seen.add(real)
        dst = out / rel.with_suffix(output_suffix(src, fmt))
        job = Job(src, dst)
        if dst.resolve() in inputs:  # e.g. -o the input folder, or --format png beside an input .png
            job.status, job.error = "failed", f"{src}: output {dst} would overwrite an input; choose another -o"
        elif dst in owners:
            job.status, job.error = "failed", f"{src}: output {dst} collides with that of {owners[dst]}"
        elif dst.exists() and not overwrite:
            job.status = "skipped"
        owners.setdefault(dst, src)
        jobs.append(job)
    return jobs


def _walk(root: Path, out: Path):
    """(file, path relative to the output folder) for every image under `root`, sorted."""
    if not root.is_dir():
        yield root, Path(root.name)
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if (here / d).resolve() != out and not d.startswith("."))
        for name in sorted(filenames):
            path = here / name
            if path.suffix.lower() in IMAGE_EXTENSIONS and not name.startswith("."):
                yield path, path.relative_to(root)


def bounded_map(pool: ThreadPoolExecutor, fn, items, ahead: int):
    """pool.map in order, but with at most `ahead` results waiting, so memory stays flat."""
    pending = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def run(jobs: list[Job], runner: Runner, batch_size: int = 4, max_size: int | None = None,
        quality: int = 95, workers: int = 2, progress: bool = True) -> Summary:
    summary = Summary(jobs)
    for job in jobs:
        if job.status == "failed":  # refused while planning (collision, would overwrite an input)
            print(f"error: {job.error}", file=sys.stderr)
    todo = [j for j in jobs if j.status == "pending"]
    start = time.perf_counter()
    # disable=None: a bar on a terminal, none in logs and pipes
    bar = tqdm(total=len(todo), unit="img", desc="stylising", disable=None if progress else True)
    lock = threading.Lock()  # encoder threads report too

    def fail(job: Job, error):
        with lock:
            job.status, job.error = "failed", " ".join(str(error).split())  # always one line
            bar.write(f"error: {job.error}", file=sys.stderr)
            bar.update(1)

    def decode(job: Job):
        try:
            return job, load_image(job.src, max_size)
        except ImageError as e:
            return job, e

    # At most this many decoded or stylised images wait in memory, whatever the folder holds.
    limit = 2 * workers * batch_size
    writing = threading.BoundedSemaphore(limit)

    def write(job: Job, image: np.ndarray, t0: float):
        try:
            save_image(image, job.dst, quality)
            with lock:
                job.status, job.seconds = "done", time.perf_counter() - t0
                bar.update(1)
        except Exception as e:  # a job must end done or failed, never vanish
            fail(job, f"{job.dst}: cannot write ({type(e).__name__}: {e})")
        finally:
            writing.release()

    buckets: dict[tuple, list] = defaultdict(list)

    def flush(shape):
        items = buckets.pop(shape)
        try:
            outputs = runner.infer(np.stack([padded for _, padded, _, _ in items]))
        except Exception as e:  # one bad batch must not end the run
            for job, *_ in items:
                fail(job, f"{job.src}: stylisation failed ({type(e).__name__}: {e})")
            return
        for (job, _, size, t0), out in zip(items, outputs):
            writing.acquire()  # back-pressure: wait while the encoders are `limit` images behind
            encoders.submit(write, job, crop_to(out, size), t0)

    with ThreadPoolExecutor(workers) as decoders, ThreadPoolExecutor(workers) as encoders:
        runner.activate()
        try:
            for job, image in bounded_map(decoders, decode, todo, ahead=limit):
                if isinstance(image, Exception):
                    fail(job, image)
                    continue
                padded, size = pad_to_multiple(image)
                buckets[padded.shape].append((job, padded, size, time.perf_counter()))
                if len(buckets[padded.shape]) >= batch_size:
                    flush(padded.shape)
                elif sum(map(len, buckets.values())) > limit:
                    # many different sizes: run the fullest bucket as a partial batch
                    flush(max(buckets, key=lambda k: len(buckets[k])))
            for shape in list(buckets):
                flush(shape)
        finally:
            runner.close()
    bar.close()
    summary.wall = time.perf_counter() - start
    return summary
