"""PyTorch backend: the graph-contract modules run eagerly on the CPU or CUDA.

On CUDA: FP16 (statistics stay FP32 inside the modules), channels_last convolutions, and one CUDA
graph per input shape, so a batch costs one launch instead of ~100 kernel launches. On a CPU with
bf16 (AMX, AVX-512 BF16): bf16 autocast on request (`--precision bf16`); the modules keep their
statistics in FP32 on `.float()` copies."""
from __future__ import annotations

import numpy as np
import torch

from ..errors import BackendError
from .base import ExtraInputs, Runner


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BackendError(f"--device {device}: this torch build sees no CUDA device (torch {torch.__version__}); "
                       "use --device cpu or install a CUDA build of torch")
    return torch.device(device)


MAX_GRAPHS = 8  # captured shapes kept; a folder of many sizes would otherwise grow GPU memory


class TorchRunner(Runner):
    """Runs a graph-contract module: its forward() takes the graph inputs by name and returns
    (stylized, finite)."""

    name = "torch"

    def __init__(self, module: torch.nn.Module, device: str = "auto", half: bool = False,
                 extra_inputs: ExtraInputs | None = None, cuda_graphs: bool | None = None, bf16: bool = False):
        super().__init__(extra_inputs)
        if half:  # as the FP16 graphs are exported
            from ..transformer_net import centered_for_fp16

            module = centered_for_fp16(module)
        self.module, self.half, self.bf16 = module, half, bf16
        self.device = resolve_device(device)
        self.cuda_graphs = self.device.type == "cuda" if cuda_graphs is None else cuda_graphs
        self.graphs: dict[tuple, CapturedGraph] = {}

    def activate(self) -> None:
        dtype = torch.float16 if self.half else torch.float32
        # NHWC input permuted to NCHW is already channels_last in memory: keep convolutions there.
        memory_format = torch.channels_last if self.device.type == "cuda" else torch.preserve_format
        self.module.to(self.device, dtype, memory_format=memory_format).eval()

    @torch.inference_mode()
    def execute(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        inputs = {k: torch.from_numpy(np.ascontiguousarray(v)).to(self.device, non_blocking=True)
                  for k, v in feeds.items()}
        if self.cuda_graphs:
            key = tuple((k, tuple(v.shape)) for k, v in sorted(inputs.items()))
            if key not in self.graphs:
                if len(self.graphs) >= MAX_GRAPHS:  # each holds its own memory pool: drop the oldest
                    del self.graphs[next(iter(self.graphs))]
                self.graphs[key] = CapturedGraph(self.module, inputs)
            self.graphs[key] = graph = self.graphs.pop(key)  # most recently used last
            stylized, finite = graph.replay(inputs)
        else:
            with torch.autocast(self.device.type, torch.bfloat16, enabled=self.bf16):
                stylized, finite = self.module(**inputs)
        return {"stylized": stylized.cpu().numpy(), "finite": finite.cpu().numpy()}

    def close(self) -> None:
        self.graphs.clear()
        self.module.to("cpu")
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


class CapturedGraph:
    """One CUDA graph of `module` for one set of input shapes, with static input buffers."""

    def __init__(self, module: torch.nn.Module, inputs: dict[str, torch.Tensor]):
        self.inputs = {k: v.clone() for k, v in inputs.items()}
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm-up outside the graph (cuDNN picks its algorithms)
            for _ in range(2):
                module(**self.inputs)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.outputs = module(**self.inputs)

    def replay(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        for k, v in inputs.items():
            self.inputs[k].copy_(v)
        self.graph.replay()
        return tuple(t.clone() for t in self.outputs)
