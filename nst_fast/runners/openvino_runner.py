"""OpenVINO backend: an exported graph compiled for the CPU, in FP32, BF16 (AMX or AVX-512 BF16),
FP16 where the CPU has it, or an INT8 graph quantized by NNCF (export/quantize.py).

OpenVINO reads the exported ONNX file (or an OpenVINO IR .xml for INT8) and picks kernels for the
precision hint; its model cache (CACHE_DIR) keeps the compiled blob, so a second run starts in a
fraction of the compile time. openvino is imported only when this runner is used."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import NSTError, WeightsError
from .base import ExtraInputs, Runner

# our precision names -> OpenVINO's INFERENCE_PRECISION_HINT and its OPTIMIZATION_CAPABILITIES entry.
# INT8 graphs carry their precision in the graph (FakeQuantize); the rest of them runs in bf16 where
# the CPU has it, else f32.
HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
CAPABILITIES = {"fp32": "FP32", "bf16": "BF16", "fp16": "FP16", "int8": "INT8"}


def import_openvino():
    try:
        import openvino
    except ImportError:
        raise NSTError("openvino is not installed: pip install openvino") from None
    return openvino


def cpu_capabilities() -> list[str]:
    """What OpenVINO's CPU plugin reports this CPU can compute in (e.g. FP32, BF16, FP16, INT8)."""
    return list(import_openvino().Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def cpu_precisions() -> list[str]:
    """Our precision names this CPU runs natively, in the order of CAPABILITIES."""
    have = set(cpu_capabilities())
    return [p for p, capability in CAPABILITIES.items() if capability in have]


def cores() -> int:
    """CPUs this process may run on (a container or taskset may allow fewer than the machine has)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class OpenVINORunner(Runner):
    """Runs one graph of the graph contract, compiled by OpenVINO for the CPU.

    The THROUGHPUT hint gives several streams (each a share of the cores); a batch is split across
    as many infer requests as OpenVINO finds optimal, so every stream works on it."""

    name = "openvino"

    def __init__(self, path: str | Path, precision: str = "fp32", threads: int | None = None,
                 cache_dir: str | Path | None = None, extra_inputs: ExtraInputs | None = None):
        super().__init__(extra_inputs)
        if precision not in CAPABILITIES:
            raise NSTError(f"openvino: unknown precision {precision!r} (one of {', '.join(CAPABILITIES)})")
        self.path, self.precision, self.threads = Path(path), precision, threads
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.name = f"openvino-cpu-{precision}"
        self.compiled, self.requests = None, []

    def config(self) -> dict:
        hint = HINTS.get(self.precision) or ("bf16" if "BF16" in cpu_capabilities() else "f32")
        config = {"PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_PRECISION_HINT": hint,
                  "INFERENCE_NUM_THREADS": self.threads or cores()}
        if self.cache_dir:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            config["CACHE_DIR"] = str(self.cache_dir)
        return config

    def activate(self) -> None:
        ov = import_openvino()
        if self.precision != "fp32" and CAPABILITIES[self.precision] not in cpu_capabilities():
            raise NSTError(f"openvino: this CPU has no {self.precision} (it reports {', '.join(cpu_capabilities())})")
        try:
            self.compiled = ov.Core().compile_model(str(self.path), "CPU", self.config())
        except Exception as e:  # OpenVINO raises RuntimeError with a multi-line message for unreadable models
            raise WeightsError(f"{self.path}: openvino cannot load this graph ({' '.join(str(e).split())[:300]})") from None
        self.input_names = [port_name(i) for i in self.compiled.inputs]
        self.output_names = [port_name(o) for o in self.compiled.outputs]
        count = max(1, int(self.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self.requests = [self.compiled.create_infer_request() for _ in range(count)]

    def execute(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = set(self.input_names) - set(feeds)
        if missing:
            raise NSTError(f"{self.path}: graph inputs {sorted(missing)} were not given")
        n = len(feeds["images"])
        parts = np.array_split(np.arange(n), min(len(self.requests), n))
        busy = list(zip(self.requests, parts))
        for request, part in busy:  # no Python callbacks: they would need the GIL from OpenVINO's threads
            request.start_async({k: split(feeds[k], part, n) for k in self.input_names})
        results = []
        for request, _ in busy:
            request.wait()
            results.append([request.get_tensor(name).data.copy() for name in self.output_names])  # reused next run
        return {name: np.concatenate([r[i] for r in results]) for i, name in enumerate(self.output_names)}

    def close(self) -> None:
        self.requests, self.compiled = [], None


def port_name(port) -> str:
    """The graph contract's name of an input or output: compiling can add names of merged internal
    tensors (ONNX names of those begin with '/') to a port."""
    return min(port.get_names(), key=lambda name: (name.startswith("/"), len(name)))


def split(value: np.ndarray, part: np.ndarray, n: int) -> np.ndarray:
    """The rows of a batched input that belong to `part`; inputs shared by the batch (one style's
    statistics, alpha) go whole to every request."""
    return np.ascontiguousarray(value[part[0]:part[-1] + 1]) if value.ndim and len(value) == n and n > 1 else value
