"""`nst-fast run`: turn files and folders into stylised images, losing nothing.

walk -> decode (threads) -> bucket by padded shape -> batches -> runner -> encode (threads) ->
write to a temporary name and rename. Images larger than the tile size go through the runner as
tiles (tiling.py). A file that fails is reported with its path and reason and the run goes on; a
failing batch fails only the files at fault; an output that already exists is skipped, so a rerun
resumes.

Videos found beside the photos (video.VIDEO_EXTENSIONS) are one job each, planned by the same
rules; they run after the photos, one at a time, through the `video` callable that the API gives
(video.stylize_video streams their frames in batches).
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Callable

import numpy as np
from tqdm import tqdm

from .errors import ImageError, NSTError
from .fileio import atomic_path, check_writable, remove_stale_parts
from .images import (
    IMAGE_EXTENSIONS, check_image, check_output_path, crop_to, decode_image, output_suffix, pad_to_multiple,
    save_image,
)
from . import interrupts
from .interrupts import sigterm_as_interrupt
from .manifest import MANIFEST, is_output_folder
from .runners import Runner
from .runners.base import NonFiniteOutput
from .tiling import Grid, needs_tiles, runner_for_tiles
from .uris import URIPath
from .video import VIDEO_EXTENSIONS, is_video

if TYPE_CHECKING:
    from .video import VideoResult

FLUSH_AFTER = 1.0  # s: a part-filled batch runs once its oldest image has waited this long
TILE_SIZE = 1024  # larger images are tiled: the largest side the engines are built and tested for


@dataclass
class Job:
    src: Path
    dst: Path
    status: str = "pending"  # done | skipped | failed; still pending after an interrupted run: not started
    error: str = ""
    seconds: float = 0.0
    note: str = ""  # e.g. "GIF with 3 frames: the first one used", "6 tiles"
    frames: int | None = None  # a video's frames stylised

    @property
    def is_video(self) -> bool:
        return is_video(self.src)

    @property
    def fps(self) -> float | None:
        """A video's frames stylised per second (decoding, stabilising and encoding included)."""
        return self.frames / self.seconds if self.frames is not None and self.seconds > 0 else None


@dataclass
class Summary:
    jobs: list[Job] = field(default_factory=list)
    wall: float = 0.0
    dry_run: bool = False
    interrupted: bool = False  # by Ctrl-C or SIGTERM: the images in flight were finished, no others

    def count(self, status: str) -> int:
        return sum(j.status == status for j in self.jobs)

    def line(self) -> str:
        if self.dry_run:
            return (f"dry run: {self.count('pending')} to stylise, {self.count('skipped')} to skip, "
                    f"{self.count('failed')} would fail; nothing written")
        done = self.count("done")
        rate = done / self.wall if self.wall > 0 else 0.0
        line = (f"{done} done, {self.count('skipped')} skipped, {self.count('failed')} failed "
                f"in {self.wall:.1f} s ({rate:.2f} images/s)")
        videos = [j for j in self.jobs if j.status == "done" and j.frames is not None]
        if videos:
            frames, seconds = sum(j.frames for j in videos), sum(j.seconds for j in videos)
            line += (f"; {len(videos)} video{'s' if len(videos) > 1 else ''}: {frames} frames in {seconds:.1f} s "
                     f"({frames / seconds if seconds else 0:.2f} frames/s)")
        if self.interrupted:
            line = f"interrupted: {line}; {self.count('pending')} not started (run the same command again to finish)"
        return line


def plan(paths: list[Path], out: Path, fmt: str | None = None, overwrite: bool = False) -> list[Job]:
    """One job per input image or video. The layout rule, the same however many paths are given: a file goes
    to `out`/its name, a folder's tree is mirrored directly under `out` (its contents, not the
    folder itself), so adding a path never moves the outputs of the others; two inputs that would
    get the same output fail as a collision. The output folder itself is never walked. Existing
    outputs are 'skipped' unless `overwrite`. Paths and `out` may be URIPaths (uris.py)."""
    out = out.resolve()
    found = [found for root in paths for found in _walk(root, _real(out))]
    if not found:
        raise NSTError(f"no images or videos found in {', '.join(printable(str(p)) for p in paths)} "
                       f"(looked for {' '.join(sorted(IMAGE_EXTENSIONS | set(VIDEO_EXTENSIONS)))})")
    resolved = [_real(src) for src, _ in found]
    inputs = set(resolved)
    exists = _exists(out)
    jobs, owners, seen = [], {}, set()
    for (src, rel), real in zip(found, resolved):
        if real in seen:  # the same file given twice is done once
            continue
        seen.add(real)
        # a video keeps its name and container; an image gets the output format's suffix
        dst = out / (rel if is_video(src) else rel.with_suffix(output_suffix(src, fmt)))
        job = Job(src, dst)
        if _real(dst) in inputs:  # e.g. -o the input folder, or --format png beside an input .png
            job.status, job.error = "failed", f"{src}: output {dst} would overwrite an input; choose another -o"
        elif dst in owners:
            job.status, job.error = "failed", (f"{src}: output {dst} collides with that of {owners[dst]} "
                                               "(folders' contents all go directly under -o: run them "
                                               "with separate -o)")
        elif exists(dst) and not overwrite:
            job.status = "skipped"
        owners.setdefault(dst, src)
        jobs.append(job)
    return jobs


def _exists(out: Path | URIPath) -> Callable[[Path | URIPath], bool]:
    """Path.exists for the outputs under `out`; for a URI, one listing of `out` instead: on an
    object store each exists() would be a request."""
    if not isinstance(out, URIPath):
        return lambda dst: dst.exists()
    listed = {out / rel for rel in out.files()} if out.is_dir() else set()
    return listed.__contains__


def check_output_places(out: Path, report: Path | None = None, contact_sheet: Path | None = None) -> None:
    """Before any work (a dry run too): every place the run will write can be written."""
    if (out.suffix.lower() in IMAGE_EXTENSIONS or is_video(out)) and not out.is_dir():
        raise NSTError(f"-o {out}: -o is the folder the outputs go into, under their own names; "
                       f"give a folder, e.g. -o {out.with_suffix('')}")
    check_writable(out)
    if report:
        check_writable(report, folder=False)
    if contact_sheet:
        check_output_path(contact_sheet)
        check_writable(contact_sheet, folder=False)


def _real(path: Path | URIPath) -> Path | URIPath:
    """What `path` names, to compare: symbolic links followed; a file:// URI as its local path."""
    if isinstance(path, URIPath):
        return path.local() or path
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a symbolic link loop: it fails later, with its reason
        return path.absolute()


def _walk(root: Path | URIPath, out: Path | URIPath):
    """(file, path relative to the output folder) for every image and video under `root`, sorted. Subfolders
    holding an nst-fast manifest are earlier outputs, not inputs: skipped, with a line each. `out`:
    the output folder (as _real gives it), not walked."""
    if isinstance(root, URIPath):
        yield from _walk_uri(root, out)
        return
    if not root.is_dir():
        yield root, Path(root.name)
        return
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if _real(here / d) != out and not d.startswith(".")
                             and not _earlier_output(here / d))
        for name in sorted(filenames):
            path = here / name
            if (path.suffix.lower() in IMAGE_EXTENSIONS or is_video(path)) and not name.startswith("."):
                yield path, path.relative_to(root)


def _walk_uri(root: URIPath, out: Path | URIPath):
    """_walk for a URI: one recursive listing (on an object store, folders are only prefixes), the
    same files left out, in os.walk's order (a folder's files, then its subfolders', by name)."""
    if not root.is_dir():
        yield root, PurePosixPath(root.name)
        return
    files = root.files()
    names = set(files)
    left_out: dict[PurePosixPath, bool] = {PurePosixPath("."): False}

    def left_out_folder(rel: PurePosixPath) -> bool:  # hidden, the output folder, or an earlier output
        if rel not in left_out:
            left_out[rel] = (left_out_folder(rel.parent) or rel.name.startswith(".") or _real(root / rel) == out
                             or rel / MANIFEST in names and _earlier_output(root / rel, listed=True))
        return left_out[rel]

    def walk_order(rel: PurePosixPath):
        return tuple((1, part) for part in rel.parent.parts) + ((0, rel.name),)

    for rel in sorted(files, key=walk_order):
        path = root / rel
        if ((path.suffix.lower() in IMAGE_EXTENSIONS or is_video(path)) and not rel.name.startswith(".")
                and not left_out_folder(rel.parent)):
            yield path, rel


def _earlier_output(folder: Path | URIPath, listed: bool = False) -> bool:
    """Whether `folder` holds an earlier run's outputs (`listed`: its manifest is known to be there)."""
    if not listed and not is_output_folder(folder):
        return False
    print(printable(f"note: not walking {folder}: it holds the outputs of an earlier run ({MANIFEST})"),
          file=sys.stderr)
    return True


def bounded_map(pool: ThreadPoolExecutor, fn, items, ahead: int):
    """pool.map in order, but with at most `ahead` results waiting, so memory stays flat."""
    pending = deque()
    for item in items:
        pending.append(pool.submit(fn, item))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def printable(text: str) -> str:
    """`text` with file-name bytes that are not UTF-8 shown as \\xNN, so it prints and goes into JSON."""
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def one_line(text) -> str:
    return printable(" ".join(str(text).split()))


def reason(e: Exception) -> str:
    if isinstance(e, NonFiniteOutput):  # its own message counts items of a batch, not this file
        hint = "overflow in FP16? try --fp32" if e.half else "in FP32: the weights or the input are at fault"
        return f"NaN or inf in the stylised output ({hint})"
    return f"{type(e).__name__}: {e}" if str(e) else type(e).__name__


def infer_each(infer: Callable[[list[int]], np.ndarray], indices: list[int]) -> list[np.ndarray | Exception]:
    """One output (or the error) per item from `infer(indices)`, a batch. When the batch fails, only
    the items at fault fail: NaN/inf fails the items it names and the others run again one by one;
    any other error (out of memory, most likely) retries every item alone before failing it."""
    try:
        return list(infer(indices))
    except NonFiniteOutput as e:
        error, bad = e, {indices[k] for k in e.items}
    except Exception as e:  # one bad batch must not end the run
        error, bad = e, set()
    if len(indices) == 1:
        return [error]
    return [error if i in bad else infer_each(infer, [i])[0] for i in indices]


def infer_batch(runner: Runner, images: list[np.ndarray], sizes: list[tuple[int, int]]) -> np.ndarray:
    """Padded images of one shape through `runner` in one call. `sizes`: each one's (h, w) before
    padding, for a runner whose work depends on it (`for_sizes(sizes)`: masks are resized to it)."""
    hook = getattr(runner, "for_sizes", None)
    return (hook(sizes) if hook else runner).infer(np.stack(images))


def stylize_tiled(runner: Runner, image: np.ndarray, tile_size: int, batch_size: int,
                  size: tuple[int, int] | None = None) -> tuple[np.ndarray, int]:
    """A padded image larger than `tile_size` through `runner` as overlapping tiles, `batch_size` at
    a time, blended back (tiling.py); also the number of tiles. `size`: its (h, w) before padding.
    Raises the first tile's error."""
    grid = Grid(*image.shape[:2], tile_size)
    tiles = grid.tiles(image)
    runner_for = runner_for_tiles(runner, image, grid, size or image.shape[:2])

    def infer(indices):
        return runner_for(indices).infer(np.stack([tiles[i] for i in indices]))

    def outputs():
        for start in range(0, len(tiles), batch_size):
            for out in infer_each(infer, list(range(start, min(start + batch_size, len(tiles))))):
                if isinstance(out, Exception):
                    raise out
                yield out

    return grid.blend(outputs()), len(grid)


@dataclass
class Item:
    """A decoded image on its way through the runner."""

    job: Job
    image: np.ndarray  # padded to multiples of 8
    size: tuple[int, int]  # (h, w) before padding
    exif: bytes | None
    icc: bytes | None
    start: float  # when its decode began


class Pipeline:
    """The state of one run after decoding: shape buckets, the runner, the encoder pool with
    back-pressure, progress and per-file lines."""

    def __init__(self, runner: Runner, encoders: ThreadPoolExecutor, limit: int, batch_size: int, quality: int,
                 tile_size: int, bar: tqdm, verbose: bool, flush_after: float = FLUSH_AFTER):
        self.runner, self.encoders, self.batch_size, self.quality = runner, encoders, batch_size, quality
        self.tile_size, self.bar, self.verbose = tile_size, bar, verbose
        self.limit, self.flush_after = limit, flush_after
        # At most `limit` stylised images wait for their encoder, whatever the folder holds.
        self.writing = threading.BoundedSemaphore(limit)
        self.lock = threading.Lock()  # encoder threads report too
        self.buckets: dict[tuple, list[Item]] = defaultdict(list)
        self.since: dict[tuple, float] = {}  # when each bucket's oldest image joined it

    def fail(self, job: Job, error, start: float | None = None) -> None:
        with self.lock:
            job.status, job.error = "failed", one_line(error)  # always one line
            job.seconds = time.perf_counter() - start if start else 0.0
            self.bar.write(f"error: {job.error}", file=sys.stderr)
            self.bar.update(1)

    def done(self, item: Item) -> None:
        job = item.job
        with self.lock:
            job.status, job.seconds = "done", time.perf_counter() - item.start
        self.report_done(job)

    def report_done(self, job: Job) -> None:
        with self.lock:
            if self.verbose:
                self.bar.write(done_line(job), file=sys.stdout)
            self.bar.update(1)

    def add(self, item: Item) -> None:
        """Queue a decoded image: into its shape's batch, or through the tiles when it is large."""
        if needs_tiles(item.image.shape, self.tile_size):
            return self.run_tiled(item)
        shape = item.image.shape
        self.buckets[shape].append(item)
        self.since.setdefault(shape, time.monotonic())
        if len(self.buckets[shape]) >= self.batch_size:
            self.flush(shape)
        elif sum(map(len, self.buckets.values())) > self.limit:
            # many different sizes: run the fullest bucket as a partial batch
            self.flush(max(self.buckets, key=lambda k: len(self.buckets[k])))
        self.flush_stale()

    def flush_stale(self) -> None:
        """Run part-filled batches that have waited too long: a lone odd-sized image in a folder of
        thousands would otherwise wait for the end of the run (and be lost to a kill)."""
        now = time.monotonic()
        for shape in [k for k, t in self.since.items() if now - t >= self.flush_after]:
            self.flush(shape)

    def flush(self, shape) -> None:
        items = self.buckets.pop(shape)
        del self.since[shape]
        infer = lambda indices: infer_batch(self.runner, [items[i].image for i in indices],  # noqa: E731
                                            [items[i].size for i in indices])
        for item, out in zip(items, infer_each(infer, list(range(len(items))))):
            if isinstance(out, Exception):
                self.fail(item.job, f"{item.job.src}: stylisation failed ({reason(out)})", item.start)
            else:
                self.write(item, out)

    def flush_all(self) -> None:
        for shape in list(self.buckets):
            self.flush(shape)

    def run_tiled(self, item: Item) -> None:
        try:
            out, tiles = stylize_tiled(self.runner, item.image, self.tile_size, self.batch_size, item.size)
        except Exception as e:  # the image fails, the run goes on
            return self.fail(item.job, f"{item.job.src}: stylisation failed ({reason(e)})", item.start)
        item.job.note = "; ".join(filter(None, [item.job.note, f"{tiles} tiles"]))
        self.write(item, out)

    def write(self, item: Item, out: np.ndarray) -> None:
        self.writing.acquire()  # back-pressure: wait while the encoders are `limit` images behind
        self.encoders.submit(self._save, item, crop_to(out, item.size))

    def _save(self, item: Item, image: np.ndarray) -> None:
        try:
            save_image(image, item.job.dst, self.quality, item.exif, item.icc)
            self.done(item)
        except Exception as e:  # a job must end done or failed, never vanish
            self.fail(item.job, f"{item.job.dst}: cannot write ({type(e).__name__}: {e})", item.start)
        finally:
            self.writing.release()


def run_videos(jobs: list[Job], video: Callable[[Job], VideoResult] | None, pipeline: Pipeline) -> bool:
    """Each video job through `video`, one at a time; a video that fails is one error line and the
    next one starts. Returns whether an interrupt stopped them: the video in flight is dropped
    (its partial file deleted, its job left not started), the others are not started."""
    for job in jobs:
        start = time.perf_counter()
        try:
            if video is None:
                raise NSTError("this runner does not stylise videos")
            result = video(job)
        except KeyboardInterrupt:
            pipeline.bar.write(f"interrupted: {printable(str(job.src))} dropped, no partial file left "
                               "(run the same command again to finish)", file=sys.stderr)
            return True
        except Exception as e:  # one bad video must not end the run
            pipeline.fail(job, video_error(job, e), start)
            continue
        job.frames = result.frames
        job.note = "; ".join([f"{result.frames} frames, {result.fps:.2f} frames/s", result.codec, *result.audio,
                              *([f"{result.cuts} scene cuts"] if result.cuts else []), *result.notes])
        with pipeline.lock:
            job.status, job.seconds = "done", result.seconds
        pipeline.report_done(job)
    return False


def video_error(job: Job, e: Exception) -> str:
    """The error line of a failed video: VideoError names the file already; others get its name."""
    text = str(e) if isinstance(e, NSTError) else f"stylisation failed ({reason(e)})"
    return text if text.startswith(str(job.src)) else f"{job.src}: {text}"


def refuse(jobs: list[Job], why: str) -> None:
    """Fail pending jobs while planning (as collisions are), with `why` after each one's path."""
    for job in jobs:
        if job.status == "pending":
            job.status, job.error = "failed", f"{job.src}: {why}"


def done_line(job: Job) -> str:
    note = f"; {job.note}" if job.note else ""
    return printable(f"done: {job.src} -> {job.dst} ({job.seconds:.2f} s{note})")


def prepare(jobs: list[Job], verbose: bool = False) -> list[Job]:
    """Before a run: the files refused while planning printed as errors (and, `verbose`, the
    skipped ones), partial files of a killed earlier run removed; returns the jobs to do."""
    for job in jobs:
        if job.status == "failed":  # refused while planning (collision, would overwrite an input)
            print(f"error: {printable(job.error)}", file=sys.stderr)
        elif job.status == "skipped" and verbose:
            print(printable(f"skipped: {job.src} ({job.dst} exists)"))
    todo = [j for j in jobs if j.status == "pending"]
    remove_partial_files(todo)  # left by a run that was killed mid-write
    return todo


def remove_partial_files(jobs: list[Job]) -> None:
    """fileio.remove_stale_parts in the folders of these jobs' outputs."""
    outputs: dict[Path | URIPath, set[str]] = defaultdict(set)
    for job in jobs:
        outputs[job.dst.parent].add(job.dst.name)
    for folder, names in outputs.items():
        if folder.is_dir():
            remove_stale_parts(folder, names)


def feed(pipeline: Pipeline, decoders: ThreadPoolExecutor, jobs: list[Job], max_size: int | None,
         keep_exif: bool, ahead: int) -> None:
    """Decode `jobs` on `decoders` (at most `ahead` waiting) into `pipeline`, in order; a file that
    cannot be decoded fails alone. The caller flushes the pipeline's last batches."""
    def decode(job: Job):
        t0 = time.perf_counter()
        try:
            return job, decode_image(job.src, max_size, keep_exif), t0
        except ImageError as e:
            return job, e, t0

    for job, decoded, t0 in bounded_map(decoders, decode, jobs, ahead=ahead):
        if isinstance(decoded, Exception):
            pipeline.fail(job, decoded, t0)
            continue
        job.note = decoded.note
        padded, size = pad_to_multiple(decoded.pixels)
        pipeline.add(Item(job, padded, size, decoded.exif, decoded.icc, t0))


def run(jobs: list[Job], runner: Runner, batch_size: int = 4, max_size: int | None = None,
        quality: int = 95, workers: int = 2, progress: bool = True, *, tile_size: int = TILE_SIZE,
        keep_exif: bool = False, verbose: bool = False, flush_after: float = FLUSH_AFTER,
        started: float | None = None, video: Callable[[Job], VideoResult] | None = None) -> Summary:
    """Stylise every pending job: the images, then the videos one at a time through `video` (the
    API's video job; it writes job.dst atomically), with the runner started. Images whose padded side exceeds `tile_size` (0: never) go
    through in tiles; `keep_exif` carries EXIF (orientation 1) and an RGB ICC profile into the
    outputs (otherwise inputs are converted to sRGB); `verbose` prints a line per finished file;
    a part-filled batch runs after `flush_after` seconds. The summary's time counts from `started`
    (time.perf_counter(), e.g. when the command began, so loading and exporting count), else now."""
    summary = Summary(jobs)
    todo = prepare(jobs, verbose)
    videos = [j for j in todo if j.is_video]
    todo = [j for j in todo if not j.is_video]
    start = started if started is not None else time.perf_counter()
    # disable=None: a bar on a terminal, none in logs and pipes (each video has its own, in frames/s)
    bar = tqdm(total=len(todo) + len(videos), unit="file", desc="stylising", disable=None if progress else True)

    limit = 2 * workers * batch_size  # decoded images waiting, and stylised ones waiting to be written
    with ThreadPoolExecutor(workers) as decoders, ThreadPoolExecutor(workers) as encoders, sigterm_as_interrupt():
        pipeline = Pipeline(runner, encoders, limit, batch_size, quality, tile_size, bar, verbose, flush_after)
        runner.activate()
        try:
            try:
                feed(pipeline, decoders, todo, max_size, keep_exif, ahead=limit)
            except KeyboardInterrupt:
                # Finish what is decoded and queued (a few batches), start nothing new; a second
                # Ctrl-C during the drain stops at once. Every output is complete either way.
                summary.interrupted = True
                decoders.shutdown(wait=False, cancel_futures=True)
                bar.write("interrupted: finishing the images in flight (Ctrl-C again to stop now)", file=sys.stderr)
            pipeline.flush_all()
            if not summary.interrupted:
                summary.interrupted = run_videos(videos, video, pipeline)
        finally:
            runner.close()
    bar.close()
    summary.wall = time.perf_counter() - start
    return summary


def summary_on_interrupt(jobs: list[Job], report: Path | None = None) -> None:
    """From now until the command ends, an interrupt outside run()'s own handling (while weights
    load or graphs export, or a second Ctrl-C) still prints the summary and writes the report."""
    begun = interrupts.started() or time.perf_counter()

    def summary() -> str:
        summary = Summary(jobs, time.perf_counter() - begun, interrupted=True)
        if report:
            write_report(summary, report)
        return summary.line()
    interrupts.on_interrupt(summary)


def dry_run(jobs: list[Job], workers: int = 2, max_size: int | None = None) -> Summary:
    """What run() would do, printed, with nothing written. Each input's header is read (a video's
    first frame), so files that are not images or videos, decompression bombs and unreadable files
    show as failing; truncated data only shows in a real decode."""
    def check(job: Job):
        try:
            if job.is_video:
                from .video import describe_video

                return job, describe_video(job.src, max_size)
            return job, check_image(job.src)
        except NSTError as e:  # ImageError, VideoError, or the video extra missing
            return job, e

    with ThreadPoolExecutor(workers) as pool:
        for job, note in bounded_map(pool, check, [j for j in jobs if j.status == "pending"], ahead=4 * workers):
            if isinstance(note, NSTError):
                job.status, job.error = "failed", one_line(note)
            else:
                job.note = note
    for job in jobs:
        if job.status == "pending":
            print(printable(f"would stylise: {job.src} -> {job.dst}" + (f" ({job.note})" if job.note else "")))
        elif job.status == "skipped":
            print(printable(f"would skip: {job.src} ({job.dst} exists)"))
        else:
            print(f"would fail: {printable(job.error)}")
    return Summary(jobs, dry_run=True)


def write_report(summary: Summary, path: Path) -> None:
    """Every file of the run in plan order, as JSON: status, input size, output, seconds, error,
    note (e.g. an animated GIF's first frame, tiling); videos also frames and fps (frames stylised
    per second). Written atomically."""
    status = lambda job: "not started" if job.status == "pending" else job.status  # noqa: E731 (interrupted run)
    files = [{"input": printable(str(j.src)), "status": status(j), "bytes": _size(j.src),
              "output": printable(str(j.dst)), "seconds": round(j.seconds, 3), "error": printable(j.error),
              "note": j.note, **video_fields(j)}
             for j in summary.jobs]
    totals = {status: summary.count(status) for status in ("done", "skipped", "failed")}
    totals["not_started"] = summary.count("pending")
    report = {"summary": {**totals, "interrupted": summary.interrupted, "wall_seconds": round(summary.wall, 3),
                          "line": summary.line()}, "files": files}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def video_fields(job: Job) -> dict:
    """A video's report fields (none for an image): frames stylised, frames per second."""
    if not job.is_video:
        return {}
    return {"frames": job.frames, "fps": None if job.fps is None else round(job.fps, 3)}


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:  # gone, a broken link, no permission on its folder
        return None
