"""onnxruntime backend: an exported graph on the CPU, or on CUDA / TensorRT where onnxruntime-gpu
is installed. onnxruntime is imported only when this runner is used."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import NSTError, WeightsError
from .base import ExtraInputs, Runner

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
}


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise NSTError("onnxruntime is not installed: pip install 'nst-fast[onnx]' "
                       "(or onnxruntime-gpu for CUDA)") from None
    return onnxruntime


def available_providers() -> list[str]:
    """Short names ('cpu', 'cuda', 'tensorrt') of the providers this onnxruntime build has."""
    try:
        ort = import_onnxruntime()
    except NSTError:
        return []
    have = set(ort.get_available_providers())
    return [short for short, full in PROVIDERS.items() if full in have]


class OnnxRuntimeRunner(Runner):
    """Runs one ONNX graph of the graph contract through an onnxruntime InferenceSession."""

    name = "onnxruntime"

    def __init__(self, path: str | Path, provider: str = "cpu", threads: int | None = None,
                 extra_inputs: ExtraInputs | None = None):
        super().__init__(extra_inputs)
        self.path, self.provider, self.threads = Path(path), provider, threads
        self.name = f"onnxruntime-{provider}"
        self.session = None

    def activate(self) -> None:
        ort = import_onnxruntime()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:  # otherwise onnxruntime's own choice: one thread per physical core
            options.intra_op_num_threads = self.threads
        wanted = PROVIDERS[self.provider]
        providers = [wanted] if self.provider == "cpu" else [wanted, PROVIDERS["cpu"]]
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=providers)
        except Exception as e:  # onnxruntime raises its own exception types for unreadable models
            raise WeightsError(f"{self.path}: onnxruntime cannot load this graph ({' '.join(str(e).split())})") from None
        running = self.session.get_providers()[0]
        if running != wanted:  # onnxruntime falls back to the CPU silently: refuse instead
            raise NSTError(f"{self.path}: asked onnxruntime for {wanted}, but it runs on {running}; "
                           "is onnxruntime-gpu installed with a matching CUDA?")
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def execute(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = set(self.input_names) - set(feeds)
        if missing:
            raise NSTError(f"{self.path}: graph inputs {sorted(missing)} were not given")
        results = self.session.run(self.output_names, {k: feeds[k] for k in self.input_names})
        return dict(zip(self.output_names, results))

    def close(self) -> None:
        self.session = None
