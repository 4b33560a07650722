"""Measure one benchmark configuration in a process of its own, so its peak memory is its own.

    python -m bench.worker '{"method": "adain", "backend": "onnxruntime", ...}'

prints one JSON line with the measurements. The harness (bench/harness.py) runs one per config.
"""
from __future__ import annotations

import json
import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from bench.flops import conv_flops

SECOND_STYLE = "the_scream"


@dataclass
class Config:
    method: str  # adain | transformer | gatys
    backend: str  # torch | onnxruntime | openvino | tensorrt
    device: str  # cpu | cuda
    half: bool  # fp16 (results before `precision` existed have only this)
    size: int  # square side of every image, px
    batch: int
    mode: str  # engine: batches already in memory | runner: files in, files out (nst_fast.batch)
    photos: list[str]  # image files to fit to size x size
    style: str = "starry_night"
    model: str | None = None  # transformer weights
    gatys_steps: int = 300
    min_seconds: float = 10.0  # keep timing batches until this much time has passed...
    min_batches: int = 5  # ...and at least this many
    threads: int | None = None
    precision: str = ""  # fp32 | fp16 | bf16 | int8; '' means by `half`
    masked: bool = False  # AdaIN: `style` and SECOND_STYLE painted by a half mask (two graph passes)

    def __post_init__(self):
        self.precision = self.precision or ("fp16" if self.half else "fp32")

    @property
    def name(self) -> str:
        masked = " masked" if self.masked else ""
        return f"{self.method}{masked} {self.backend}-{self.device} {self.precision} {self.size}px b{self.batch} {self.mode}"


def fitted(config: Config, count: int) -> np.ndarray:
    from export.validate import fit
    from nst_fast.images import load_image

    images = [fit(load_image(p), config.size, config.size) for p in config.photos]
    return np.stack([images[i % len(images)] for i in range(count)])


def build_runner(config: Config):
    from export.cache import graph_locator
    from nst_fast import methods
    from nst_fast.backends import Backend
    from nst_fast.gatys import GatysConfig

    if config.method == "gatys":
        return methods.GatysRunner(str(config.style), GatysConfig(steps=config.gatys_steps), device=config.device,
                                   progress=False)
    backend = Backend(config.backend, config.device, config.precision)
    locate = None
    if backend.needs_onnx:
        from export.engine import Profile

        shape = (config.batch, config.size, config.size)
        locate = graph_locator(engine_profile=Profile(shape, shape, shape), progress=False)
    if config.method == "adain" and config.masked:
        mask = np.zeros((8, 8), np.float32)
        mask[:, :4] = 1
        return methods.adain_runner([config.style, SECOND_STYLE], backend=backend, graph_file=locate, masks=[mask])
    if config.method == "adain":
        return methods.adain_runner([config.style], backend=backend, graph_file=locate)
    return methods.transformer_runner(config.style, config.model, backend=backend, graph_file=locate)


def flops_per_image(config: Config, runner) -> float:
    """Convolution FLOPs for one image; Gatys: each step is a VGG forward and backward (~3x forward)."""
    x = torch.zeros(1, config.size, config.size, 3, dtype=torch.uint8)
    if config.method == "gatys":
        from nst_fast.weights import vgg_weights

        vgg = vgg_weights().build("relu5_1")
        return 3.0 * config.gatys_steps * conv_flops(vgg, torch.zeros(1, 3, config.size, config.size),
                                                     taps=["relu5_1"])
    from nst_fast.graphs import adain_graphs, transformer_graph

    if config.method == "adain":
        encoder, stylizer = (graph.module for graph in adain_graphs())
        flops = float(conv_flops(stylizer, x, torch.zeros(1, 512), torch.ones(1, 512), torch.ones(1)))
        # masked: the graph once per style, and the encoder once more for the regions' statistics
        return 2 * flops + float(conv_flops(encoder, x)) if config.masked else flops
    return float(conv_flops(transformer_graph(config.style, config.model).module, x, torch.ones(1)))


def time_engine(config: Config, runner) -> dict:
    batch = fitted(config, config.batch)
    if config.method != "gatys":  # warm-up: allocation, kernel choice, graph capture
        runner.infer(batch)
        runner.infer(batch)
    latencies = []
    start = time.perf_counter()
    while len(latencies) < config.min_batches or time.perf_counter() - start < config.min_seconds:
        t0 = time.perf_counter()
        runner.infer(batch)
        latencies.append(time.perf_counter() - t0)
        if config.method == "gatys":
            break  # one optimisation is minutes: once is the measurement
    latencies = np.array(latencies)
    return {"batches": len(latencies), "images_per_s": config.batch * len(latencies) / latencies.sum(),
            "batch_p50_s": float(np.percentile(latencies, 50)), "batch_p95_s": float(np.percentile(latencies, 95)),
            "image_p50_s": float(np.percentile(latencies, 50)) / config.batch,
            "image_p95_s": float(np.percentile(latencies, 95)) / config.batch}


def time_runner(config: Config, runner, count: int) -> dict:
    """Files in, files out: the batch runner on `count` JPEGs of size x size."""
    from nst_fast import batch
    from nst_fast.images import save_image

    with tempfile.TemporaryDirectory() as tmp:
        for i, image in enumerate(fitted(config, count)):
            save_image(image, Path(tmp) / "in" / f"{i:05d}.jpg")
        jobs = batch.plan([Path(tmp) / "in"], Path(tmp) / "out")
        summary = batch.run(jobs, runner, config.batch, max_size=None, progress=False)
    done = summary.count("done")
    return {"images": count, "done": done, "wall_s": summary.wall, "images_per_s": done / summary.wall}


def measure(config: Config, runner_images: int = 0) -> dict:
    if config.threads:
        torch.set_num_threads(config.threads)
    t0 = time.perf_counter()
    runner = build_runner(config)  # includes exporting the graph / building the engine if not cached
    prepare = time.perf_counter() - t0
    t0 = time.perf_counter()
    runner.activate()
    activate = time.perf_counter() - t0
    try:
        result = {"config": asdict(config), "name": config.name, "prepare_s": prepare, "activate_s": activate,
                  **time_engine(config, runner)}
    finally:
        runner.close()
    if config.mode == "runner":  # batch.run activates and closes the runner itself
        result["runner"] = time_runner(config, runner, runner_images)
    # memory before the FLOP count below builds a model of its own
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if config.device == "cuda":  # torch's allocations: what torch and its CUDA graphs hold
        result["peak_torch_gpu_mb"] = torch.cuda.max_memory_allocated() / 2 ** 20
    result["flops_per_image"] = flops_per_image(config, runner)
    result["achieved_flops"] = result["flops_per_image"] * result["images_per_s"]
    return result


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    images = spec.pop("runner_images", 0)
    print(json.dumps(measure(Config(**spec), images)))
