"""Ray benchmark: `nst-fast run --ray local` end to end against the local runner, on the same files
with the same engine; the start-up cost of a local Ray; a two-node cluster on this machine
(ray.cluster_utils.Cluster) against one node.

    python -m bench.cluster --photos ../shared/data/photos --count 200 --size 512 -o bench/results

Every run is the command in a fresh process (local and --ray local alternating, --repeat times), timed from its start to its exit (weights, engine
and, on Ray, the cluster's start and the actors' set-up included); images/s is the run's own
summary (done / its wall time). The graphs are exported once before the first timed run. Writes
DATE-ray-SIZE-cpu.json and .md.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nst_fast.fileio import atomic_path
from nst_fast.images import image_files, load_image, save_image

CLI = [sys.executable, "-c", "from nst_fast.cli import main; main()"]
START_RAY = ("import time, ray; t = time.perf_counter(); ray.init(address='local', include_dashboard=False); "
             "ray.get(ray.remote(lambda: 1).remote()); print(time.perf_counter() - t)")


def make_inputs(photos: Path, count: int, size: int, folder: Path) -> None:
    """`count` JPEGs of size x size: centre squares of the photos, cycled, each shifted a little."""
    from PIL import Image

    sources = [load_image(p) for p in image_files(photos)]
    folder.mkdir(parents=True)
    for i in range(count):
        image = sources[i % len(sources)]
        side = min(image.shape[:2]) - (i // len(sources)) % 16
        top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
        square = Image.fromarray(image[top:top + side, left:left + side]).resize((size, size), Image.LANCZOS)
        save_image(np.asarray(square), folder / f"{i:05d}.jpg")


def timed_run(inputs: Path, out: Path, options: list[str], env: dict | None = None) -> dict:
    report, load = out.with_suffix(".json"), os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run([*CLI, "run", str(inputs), "-o", str(out), "--report", str(report), "-q", *options],
                          capture_output=True, text=True, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(options)}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    summary = json.loads(report.read_text())["summary"]
    return {"options": " ".join(options), "done": summary["done"], "process_wall_s": round(wall, 2),
            "run_wall_s": summary["wall_seconds"], "images_per_s": round(summary["done"] / summary["wall_seconds"], 3), "load_average": load}


def on_cluster(nodes: int, cpus: int, inputs: Path, out: Path, options: list[str]) -> dict:
    """A run with --ray auto on a cluster of `nodes` nodes of `cpus` CPUs each, started here."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": cpus, "include_dashboard": False})
    for _ in range(nodes - 1):
        cluster.add_node(num_cpus=cpus)
    try:
        result = timed_run(inputs, out, [*options, "--ray", "auto"], env={"RAY_ADDRESS": cluster.address})
    finally:
        cluster.shutdown()
    return {**result, "cluster": f"{nodes} node(s) x {cpus} CPU"}


def markdown(report: dict) -> str:
    env, rows = report["environment"], report["results"]
    local = float(np.median([row["images_per_s"] for row in rows if "--ray" not in row["options"]]))
    lines = [f"# `run --ray`: {report['count']} photos at {report['size']} px, style {report['style']}",
             "", f"{env['cpu']}, {env['cores']} cores; load average at the start {report['load_average']}; "
             f"git {env['git_commit']}, {env['date']}", "",
             f"Start-up of a local Ray (`ray.init` + one task): {report['ray_start_s']:.1f} s", "",
             "| run | where | images/s | vs local runner (median) | run wall s | process wall s | load at start |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        lines.append(f"| `{row['options']}` | {row.get('cluster', 'this machine')} | {row['images_per_s']:.3f} | "
                     f"{row['images_per_s'] / local:.0%} | {row['run_wall_s']:.1f} | {row['process_wall_s']:.1f} | "
                     f"{row['load_average']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    from bench.harness import environment

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--style", default="starry_night")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each, local and --ray local, alternating")
    parser.add_argument("--no-clusters", action="store_true", help="skip the one-node / two-node comparison")
    parser.add_argument("-o", "--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()

    options = ["-s", args.style, "--max-size", str(args.size)]
    report = {"count": args.count, "size": args.size, "style": args.style, "load_average": os.getloadavg()[0],
              "environment": environment("cpu")}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_inputs(args.photos, args.count, args.size, tmp / "in")
        (tmp / "warm").mkdir()
        save_image(load_image(next(iter(sorted((tmp / "in").iterdir())))), tmp / "warm" / "one.jpg")
        timed_run(tmp / "warm", tmp / "warm-out", options)  # exports the graphs into the cache: not timed
        report["ray_start_s"] = float(subprocess.run([sys.executable, "-c", START_RAY], capture_output=True,
                                                     text=True, check=True).stdout.split()[-1])
        rows = []
        for i in range(args.repeat):  # alternating, so a change in the machine's load hits both alike
            rows += [timed_run(tmp / "in", tmp / f"local-{i}", options),
                     timed_run(tmp / "in", tmp / f"ray-local-{i}", [*options, "--ray", "local"])]
        if not args.no_clusters:
            rows += [on_cluster(1, 1, tmp / "in", tmp / "one-node", options),
                     on_cluster(2, 1, tmp / "in", tmp / "two-nodes", options)]
        report["results"] = rows
    stem = args.out / f"{time.strftime('%Y-%m-%d')}-ray-{args.size}-cpu"
    for suffix, text in ((".json", json.dumps(report, indent=2) + "\n"), (".md", markdown(report))):
        with atomic_path(stem.with_suffix(suffix)) as part:
            part.write_text(text)
    print(markdown(report))


if __name__ == "__main__":
    main()
