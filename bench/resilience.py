"""The batch runner's promises, measured on real runs of `nst-fast run` in child processes:

- memory: peak RSS for N files against 10 N files (it must not grow with the folder);
- kill -9: a run killed at a random moment, then rerun, leaves every output decodable and equal to
  a clean run's output for that file.

    python -m bench.resilience --photos ../shared/data/eval/content --size 256 --count 200 -o bench/results/x.json
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np

from nst_fast.fileio import atomic_path
from nst_fast.images import image_files, load_image, save_image

CLI = [sys.executable, "-m", "nst_fast.cli"]


def make_inputs(photos: list[Path], folder: Path, count: int, size: int) -> None:
    """`count` JPEGs at most `size` px, cycling over the given photos (each file a distinct name)."""
    images = [load_image(p, size) for p in photos]
    for i in range(count):
        save_image(images[i % len(images)], folder / f"{i:05d}.jpg")


def run_cli(args: list[str], kill_when=None, patience: float = 600.0) -> dict:
    """Run `nst-fast run ARGS`; SIGKILL it as soon as `kill_when()` is true, if given. Returns exit
    status, wall time and the child's peak RSS (from wait4)."""
    start = time.perf_counter()
    errors = tempfile.TemporaryFile()  # a file, not a pipe: a pipe nobody reads can block the child
    proc = subprocess.Popen(CLI + ["run", *args, "--quiet"], stdout=subprocess.DEVNULL, stderr=errors)
    if kill_when is not None:
        # no proc.poll(): it would reap the child, which wait4 below needs; a child that ended is a
        # zombie until then, so the kill is harmless and its exit status tells
        while not kill_when() and time.perf_counter() - start < patience:
            time.sleep(0.01)
        # os.kill, not proc.send_signal: that polls first and may reap the child, and wait4 needs it
        os.kill(proc.pid, signal.SIGKILL)  # a zombie, if it already ended: harmless
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"exit": proc.returncode, "wall_s": time.perf_counter() - start, "peak_rss_mb": usage.ru_maxrss / 1024,
            "stderr_tail": tail(errors)}


def tail(file, size: int = 500) -> str:
    file.seek(0)
    text = file.read().decode(errors="replace")[-size:]
    file.close()
    return text


def memory(photos, size: int, count: int, style: str, work: Path) -> dict:
    results = {}
    for n in (count, 10 * count):
        make_inputs(photos, work / f"in{n}", n, size)
        results[n] = run_cli([str(work / f"in{n}"), "-s", style, "-o", str(work / f"out{n}")])
        click.echo(f"{n} files: peak RSS {results[n]['peak_rss_mb']:.0f} MB in {results[n]['wall_s']:.0f} s")
    small, large = (results[n]["peak_rss_mb"] for n in (count, 10 * count))
    return {"runs": results, "ratio": large / small, "within_10_percent": large <= 1.1 * small}


def kill_and_resume(photos, size: int, count: int, style: str, work: Path, seed: int) -> dict:
    make_inputs(photos, work / "in", count, size)
    args = lambda out: [str(work / "in"), "-s", style, "-o", str(work / out), "--format", "png"]  # noqa: E731
    clean = run_cli(args("clean"))
    # mid-run by construction: once a random number of outputs (at least one, not all) is written
    target = random.Random(seed).randint(1, count - 2)
    killed = run_cli(args("killed"), kill_when=lambda: len(list((work / "killed").glob("*.png"))) >= target)
    after_kill = sorted(p.name for p in (work / "killed").glob("*.png"))
    parts_after_kill = len(list((work / "killed").glob(".*.part")))
    rerun = run_cli(args("killed"))
    parts_after_rerun = len(list((work / "killed").glob(".*.part")))
    mismatched, undecodable = [], []
    for clean_file in sorted((work / "clean").glob("*.png")):
        try:
            out = load_image(work / "killed" / clean_file.name)
        except Exception:
            undecodable.append(clean_file.name)
            continue
        if not np.array_equal(out, load_image(clean_file)):
            mismatched.append(clean_file.name)
    return {"count": count, "clean_wall_s": clean["wall_s"], "killed_after_outputs": target,
            "killed_after_s": killed["wall_s"], "killed_exit": killed["exit"],
            "complete_after_kill": len(after_kill), "partial_files_after_kill": parts_after_kill,
            "partial_files_after_rerun": parts_after_rerun, "rerun_exit": rerun["exit"],
            "undecodable": undecodable, "mismatched": mismatched,
            "passed": killed["exit"] == -9 and rerun["exit"] == 0 and not undecodable and not mismatched
            and parts_after_rerun == 0}


def markdown(result: dict) -> str:
    kill, memory = result["kill"], result["memory"]
    runs = memory["runs"]
    small, large = sorted(runs, key=int)
    return "\n".join([
        f"# Batch runner resilience ({result['size']} px, style {result['style']})", "",
        f"`{result.get('command', 'python -m bench.resilience')}`", "",
        "| measurement | result |", "|---|---|",
        f"| peak RSS, {small} files | {runs[small]['peak_rss_mb']:.0f} MB ({runs[small]['wall_s']:.0f} s) |",
        f"| peak RSS, {large} files | {runs[large]['peak_rss_mb']:.0f} MB ({runs[large]['wall_s']:.0f} s) |",
        f"| ratio | {memory['ratio']:.3f} ({'within' if memory['within_10_percent'] else 'NOT within'} 10 %) |",
        f"| kill -9 | after {kill['complete_after_kill']} of {kill['count']} outputs ({kill['killed_after_s']:.1f} s), "
        f"exit {kill['killed_exit']}; {kill['partial_files_after_kill']} partial file(s) left |",
        f"| rerun | exit {kill['rerun_exit']}; {kill['partial_files_after_rerun']} partial file(s) left; "
        f"{len(kill['undecodable'])} undecodable, {len(kill['mismatched'])} differing from a clean run's output |",
        f"| kill -9 + rerun check | {'passed' if kill['passed'] else 'FAILED'} |", ""])


@click.command()
@click.option("--photos", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("--size", default=256, show_default=True)
@click.option("--count", default=200, show_default=True, help="Files for the memory run (and 10x that).")
@click.option("--kill-count", type=click.IntRange(3), default=40, show_default=True, help="Files for the kill -9 run.")
@click.option("--style", default="starry_night", show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True)
def main(photos, size, count, kill_count, style, seed, output):
    files = image_files(photos)[:20]
    if not files:
        raise click.UsageError(f"--photos {photos}: no image files in it")
    with tempfile.TemporaryDirectory() as tmp:
        result = {"size": size, "style": style,
                  "kill": kill_and_resume(files, size, kill_count, style, Path(tmp) / "kill", seed),
                  "memory": memory(files, size, count, style, Path(tmp) / "memory")}
    result["command"] = " ".join(["python -m bench.resilience", *sys.argv[1:]])
    with atomic_path(output) as part:
        part.write_text(json.dumps(result, indent=1) + "\n")
    with atomic_path(output.with_suffix(".md")) as part:
        part.write_text(markdown(result))
    click.echo(json.dumps({"kill": result["kill"]["passed"], "memory_ratio": result["memory"]["ratio"]}))


if __name__ == "__main__":
    main()
