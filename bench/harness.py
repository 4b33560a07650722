"""`nst-fast bench`: every method on every backend this machine has, at each size, side by side with
the Gatys baseline, measured in one run. Each configuration runs in its own process (bench/worker.py)
so peak memory is per configuration; results go to bench/results/<date>-<host>-<device>.{json,md,png}.
"""
from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from tqdm import tqdm

from bench.worker import Config
from nst_fast.errors import NSTError

def backends_here(device: str) -> list[tuple[str, str, str]]:
    """(backend, device, precision) for every usable backend, the one `run` picks first: FP16 and
    FP32 on GPUs; on the CPU every precision OpenVINO has (FP32, BF16, INT8; FP16 only where it
    has no BF16), FP32 for the others and torch's bf16 autocast where the CPU has bf16."""
    from nst_fast.backends import candidates, choose, precisions

    found = []
    for kind, dev, why_not in candidates(device):
        if why_not:
            continue
        if dev == "cuda":
            found += [(kind, dev, "fp16"), (kind, dev, "fp32")]
        elif kind == "openvino":
            have = precisions(kind, dev)
            found += [(kind, dev, p) for p in ("fp32", "bf16", "int8") if p in have]
            found += [(kind, dev, "fp16")] if "fp16" in have and "bf16" not in have else []
        else:
            found.append((kind, dev, "fp32"))
            found += [(kind, dev, "bf16")] if kind == "torch" and "bf16" in precisions(kind, dev) else []
    picked = choose(device=device)[0]
    first = (picked.kind, picked.device, picked.precision)
    return [first] + [f for f in found if f != first] if first in found else found


def plan(methods: list[str], sizes: list[int], batch: int, photos: list[str], style: str, device: str,
         model: str | None, runner_images: int, gatys_steps: int, min_seconds: float,
         masks: bool = False, backends: tuple[str, ...] = ()) -> list[dict]:
    """Worker specs: Gatys once per size, every other method on every backend (or those named in
    `backends`); the first of them (the one `run` would pick, if timed) also end to end through the
    batch runner on `runner_images` files; with `masks`, AdaIN on every backend also with two styles
    painted by a half mask."""
    found = [b for b in backends_here(device) if not backends or b[0] in backends]
    if not found:
        named = f" among {', '.join(backends)}" if backends else ""
        raise NSTError(f"no backend{named} runs on --device {device} here (see nst-fast info)")
    specs = []
    for size in sizes:
        if "gatys" in methods:
            gatys_device = found[0][1]
            specs.append({**asdict(Config("gatys", "torch", gatys_device, False, size, 1, "engine", photos, style,
                                          gatys_steps=gatys_steps)), "runner_images": 0})
        for method in [m for m in methods if m != "gatys"]:
            for kind, dev, precision in found:
                end_to_end = runner_images > 0 and (kind, dev, precision) == found[0]
                config = Config(method, kind, dev, precision == "fp16", size, batch, "runner" if end_to_end else "engine",
                                photos, style if method == "adain" else "starry_night",
                                model if method == "transformer" else None, min_seconds=min_seconds, precision=precision)
                specs.append({**asdict(config), "runner_images": runner_images if end_to_end else 0})
                if masks and method == "adain":
                    specs.append({**asdict(config), "mode": "engine", "masked": True, "runner_images": 0})
    return specs


def run_one(spec: dict, env: dict, timeout: float = 3600.0) -> dict:
    try:
        proc = subprocess.run([sys.executable, "-m", "bench.worker", json.dumps(spec)], capture_output=True,
                              text=True, env=env, cwd=Path(__file__).parents[1], timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"config": spec, "error": f"did not finish in {timeout:.0f} s"}
    lines = proc.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        return {"config": spec, "error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}


def speedups(results: list[dict]) -> None:
    """Images/s over Gatys's at the same size, from this same run."""
    gatys = {r["config"]["size"]: r["images_per_s"] for r in results if r["config"]["method"] == "gatys" and "error" not in r}
    for r in results:
        if "error" not in r and r["config"]["size"] in gatys:
            r["speedup_vs_gatys"] = r["images_per_s"] / gatys[r["config"]["size"]]


def environment(device: str) -> dict:
    import numpy
    import torch

    from nst_fast.backends import cpu_name, has

    cpu = cpu_name()
    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__}
    for name in ("onnx", "onnxruntime", "openvino", "nncf", "tensorrt"):
        if has(name):
            try:
                versions[name] = __import__(name).__version__
            except Exception as e:  # e.g. a tensorrt wheel without its libraries: note it, keep the results
                versions[name] = f"unusable ({type(e).__name__})"
    env = {"host": socket.gethostname(), "cpu": cpu, "cores": os.cpu_count(), "versions": versions,
           "git_commit": git_commit(), "date": time.strftime("%Y-%m-%d %H:%M:%S %z")}
    if torch.cuda.is_available() and device != "cpu":
        env["gpu"] = torch.cuda.get_device_name()
        try:
            env["driver"] = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                           capture_output=True, text=True).stdout.strip()
        except OSError:
            env["driver"] = "unknown (no nvidia-smi)"
    return env


def git_commit() -> str:
    """The commit measured, "unknown" where there is no git (a GPU machine's copy of the tree)."""
    try:
        proc = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parents[1])
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=Path(__file__).parents[1]).stdout.strip()
    except OSError:
        return "unknown"
    return (proc.stdout.strip() or "unknown") + ("+changes" if dirty and proc.stdout.strip() else "")


def run(specs: list[dict], device: str, out: Path, label: str | None = None) -> Path:
    from bench.flops import gemm_peak
    from bench.report import write_report

    # Graphs and engines are built into a fresh cache: the first configuration needing each pays for it.
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NST_FAST_GRAPH_CACHE": cache}
        results = []
        with tqdm(specs, desc="bench", unit="config") as bar:
            for spec in bar:
                bar.set_postfix_str(Config(**{k: v for k, v in spec.items() if k != "runner_images"}).name)
                results.append(run_one(spec, env))
                if "error" in results[-1]:
                    bar.write(f"failed: {results[-1]['error']}")
    speedups(results)
    environ = environment(device)
    environ["peak_flops"] = {"cpu_fp32_gemm": gemm_peak("cpu")}
    if "gpu" in environ:
        import torch

        environ["peak_flops"]["cuda_fp16_gemm"] = gemm_peak("cuda", dtype=torch.float16)
    kind = "cuda" if "gpu" in environ else "cpu"
    stem = f"{time.strftime('%Y-%m-%d')}-{label or environ['host']}-{kind}"
    return write_report({"environment": environ, "results": results}, out / stem)
