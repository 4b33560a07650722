"""Which engine runs the graphs: `--backend auto` takes the fastest this machine has.

Order: TensorRT, onnxruntime on CUDA, torch on CUDA, onnxruntime on the CPU, torch on the CPU.
Only availability is checked here (import specs, CUDA visibility); nothing heavy is imported.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from .errors import BackendError

@dataclass(frozen=True)
class Backend:
    kind: str  # tensorrt | onnxruntime | torch
    device: str  # cuda | cpu
    half: bool = False

    def __str__(self) -> str:
        return f"{self.kind} on {self.device.upper() if self.device == 'cuda' else 'the CPU'}" + \
            (", FP16" if self.half else ", FP32")

    @property
    def needs_onnx(self) -> bool:
        return self.kind != "torch"


def has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def torch_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def onnxruntime_providers() -> list[str]:
    if not (has("onnxruntime") and has("onnx")):
        return []
    from .runners.onnxruntime_runner import available_providers

    return available_providers()


def candidates(device: str = "auto") -> list[tuple[str, str, str]]:
    """(kind, device, why not) for each backend in order of preference; `why not` is '' when usable."""
    cuda_ok = torch_cuda()
    providers = onnxruntime_providers()
    gpu = [
        ("tensorrt", "cuda", "" if has("tensorrt") and cuda_ok else
         "tensorrt not installed" if not has("tensorrt") else "no CUDA device"),
        ("onnxruntime", "cuda", "" if "cuda" in providers else "onnxruntime-gpu not installed"),
        ("torch", "cuda", "" if cuda_ok else "torch sees no CUDA device"),
    ]
    cpu = [
        ("onnxruntime", "cpu", "" if "cpu" in providers else "onnx/onnxruntime not installed (pip install 'nst-fast[onnx]')"),
        ("torch", "cpu", ""),
    ]
    return {"auto": gpu + cpu, "cuda": gpu, "cpu": cpu}[device]


def choose(backend: str = "auto", device: str = "auto", half: bool | None = None) -> tuple[Backend, list[str]]:
    """The backend to run, and the reasons the ones before it were passed over.
    `half` None means FP16 on a GPU and FP32 on the CPU (where FP16 is slower, not faster)."""
    passed_over = []
    for kind, dev, why_not in candidates(device):
        if backend not in ("auto", kind):
            continue
        if why_not:
            passed_over.append(f"{kind} on {dev}: {why_not}")
            continue
        return Backend(kind, dev, dev == "cuda" if half is None else half), passed_over
    why = "; ".join(passed_over) or f"{backend} does not run on the {device.upper() if device == 'cuda' else 'CPU'}"
    raise BackendError(f"--backend {backend} --device {device} is not available here: {why}")
