"""Which engine runs the graphs, in which precision: `--backend auto --precision auto` takes the
fastest this machine has.

Order: TensorRT, onnxruntime on CUDA, torch on CUDA, then on the CPU OpenVINO, onnxruntime, torch.
Precision auto: FP16 on GPUs; BF16 with OpenVINO where the CPU reports it (AMX or AVX-512 BF16);
else FP32. INT8 (an NNCF-quantized graph) only when asked for: AdaIN's INT8 graph fails validation,
and the transformer's passes the 30 dB bar but is far less exact than BF16 for its speed-up (README,
Measured). Only availability is checked here (import specs, CUDA visibility, OpenVINO's capability
list); nothing heavy is imported.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import cache

from .errors import BackendError, NSTError

PRECISIONS = ["auto", "fp32", "fp16", "bf16", "int8"]


@dataclass(frozen=True)
class Backend:
    kind: str  # tensorrt | onnxruntime | openvino | torch
    device: str  # cuda | cpu
    precision: str = "fp32"  # fp32 | fp16 | bf16 | int8; a bool is the older half flag (True: fp16)

    def __post_init__(self):
        if isinstance(self.precision, bool):
            object.__setattr__(self, "precision", "fp16" if self.precision else "fp32")

    def __str__(self) -> str:
        return f"{self.kind} on {self.device.upper() if self.device == 'cuda' else 'the CPU'}, {self.precision.upper()}"

    @property
    def half(self) -> bool:
        return self.precision == "fp16"

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


@cache
def openvino_precisions() -> tuple[str, ...]:
    """Precisions OpenVINO's CPU plugin runs here (empty without openvino, or without onnx to export)."""
    if not (has("openvino") and has("onnx")):
        return ()
    from .runners.openvino_runner import cpu_precisions

    return tuple(cpu_precisions())


def cpu_name() -> str:
    """The CPU's model name ('Intel(R) Xeon(R) Processor'), for reports and model cards."""
    import platform
    from pathlib import Path

    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.exists() else []
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                platform.processor() or platform.machine())


def cpu_bf16() -> bool:
    """Whether torch's CPU kernels have native bf16 here (oneDNN on AMX or AVX-512 BF16)."""
    import torch

    return bool(getattr(torch.backends.mkldnn, "is_available", lambda: False)()) and \
        torch.ops.mkldnn._is_mkldnn_bf16_supported()


def precisions(kind: str, device: str) -> list[str]:
    """What a backend can run on this machine."""
    if device == "cuda":
        return ["fp16", "fp32"]
    if kind == "openvino":
        return list(openvino_precisions())
    if kind == "torch":
        return ["fp32", "fp16"] + (["bf16"] if cpu_bf16() else [])
    return ["fp32", "fp16"]  # onnxruntime on the CPU: FP16 graphs run, cast to FP32 inside


def auto_precision(kind: str, device: str) -> tuple[str, str]:
    """(precision, why) that `--precision auto` takes for a backend."""
    if device == "cuda":
        return "fp16", "FP16 on GPUs"
    if kind == "openvino" and "bf16" in openvino_precisions():
        return "bf16", "the CPU reports BF16 (AMX or AVX-512 BF16)"
    if kind == "openvino":
        return "fp32", "the CPU reports no BF16"
    return "fp32", f"{kind} on the CPU: FP32 is its fastest accurate precision"


def resolve_precision(precision: str = "auto", half: bool | None = None) -> str:
    """`--precision`, with `--fp16`/`--fp32` (half True/False) as aliases."""
    if half is None:
        return precision
    alias = "fp16" if half else "fp32"
    if precision not in ("auto", alias):
        raise NSTError(f"--{alias} contradicts --precision {precision}")
    return alias


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
        ("openvino", "cpu", "" if openvino_precisions() else "openvino/onnx not installed (pip install openvino onnx)"),
        ("onnxruntime", "cpu", "" if "cpu" in providers else "onnx/onnxruntime not installed (pip install 'nst-fast[onnx]')"),
        ("torch", "cpu", ""),
    ]
    return {"auto": gpu + cpu, "cuda": gpu, "cpu": cpu}[device]


def choose(backend: str = "auto", device: str = "auto", half: bool | None = None,
           precision: str = "auto") -> tuple[Backend, list[str]]:
    """The backend to run, and the reasons the ones before it were passed over. `precision` auto
    takes `auto_precision`; `half` is the older --fp16/--fp32 flag (see resolve_precision)."""
    precision = resolve_precision(precision, half)
    passed_over = []
    for kind, dev, why_not in candidates(device):
        if backend not in ("auto", kind):
            continue
        if not why_not and precision != "auto" and precision not in precisions(kind, dev):
            why_not = f"no {precision} here (runs {', '.join(precisions(kind, dev))})"
        if why_not:
            passed_over.append(f"{kind} on {dev}: {why_not}")
            continue
        return Backend(kind, dev, auto_precision(kind, dev)[0] if precision == "auto" else precision), passed_over
    why = "; ".join(passed_over) or f"{backend} does not run on the {device.upper() if device == 'cuda' else 'CPU'}"
    raise BackendError(f"--backend {backend} --device {device} --precision {precision} is not available here: {why}")


def explain(backend: Backend) -> str:
    """Why `run` computes in this precision, for `nst-fast info`."""
    precision, why = auto_precision(backend.kind, backend.device)
    if backend.precision != precision:
        return f"{backend.precision} as asked"
    note = ""
    if backend.kind == "openvino" and "int8" in openvino_precisions():
        note = "; int8 only with --precision int8 (validated at >= 30 dB, not bf16's >= 40)"
    return why + note
