"""Trace the graph-contract modules (nst_fast/stylizers.py) to self-contained ONNX files.

Exporter: the TorchScript tracer (`dynamo=False`). These graphs are plain convolution stacks with
no data-dependent control flow, which the tracer captures exactly; it writes one file with the
weights inside (the dynamo exporter, torch's default since 2.9, writes an external `.data` sidecar
by default and needs onnxscript). Upsampling is traced with constant scale factors, which
TensorRT's parser requires.

FP16: the module is cast to half before tracing. Weights, convolutions and activations are then
FP16, while the statistics (AdaIN mean/std, instance norm) are computed on explicit `.float()`
copies in the modules, so the graph carries FP32 islands with Cast nodes around them: exactly
what a strongly typed TensorRT network executes, and what onnxruntime runs to prove its accuracy.
"""
from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import torch

from nst_fast.fileio import atomic_path

OPSET = 17

INPUTS = {
    "style_encoder": ["images"],
    "adain_stylizer": ["images", "style_mean", "style_std", "alpha"],
    "transformer": ["images", "alpha"],
}
OUTPUTS = {
    "style_encoder": ["mean", "std"],
    "adain_stylizer": ["stylized", "finite"],
    "transformer": ["stylized", "finite"],
}
DYNAMIC_AXES = {
    "images": {0: "N", 1: "H", 2: "W"},
    "style_mean": {0: "S"},  # 1 (one style for the batch) or N (per-photo statistics)
    "style_std": {0: "S"},
    "stylized": {0: "N", 1: "H", 2: "W"},
    "finite": {0: "N"},
    "mean": {0: "N"},
    "std": {0: "N"},
}


def example_feeds(graph: str, n: int = 2, height: int = 64, width: int = 96, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs of the right names, dtypes and ranks for `graph`."""
    rng = np.random.default_rng(seed)
    feeds = {
        "images": rng.integers(0, 256, (n, height, width, 3), dtype=np.uint8),
        "style_mean": rng.uniform(0, 5, (1, 512)).astype(np.float32),
        "style_std": rng.uniform(0.5, 10, (1, 512)).astype(np.float32),
        "alpha": np.ones(1, np.float32),
    }
    return {name: feeds[name] for name in INPUTS[graph]}


def export_graph(module: torch.nn.Module, graph: str, path: str | Path, half: bool = False) -> Path:
    """Write `module` (a graph-contract module for `graph`) as one checked ONNX file, atomically."""
    import onnx

    from nst_fast.transformer_net import centered_for_fp16

    module = (centered_for_fp16(module) if half else copy.deepcopy(module)).to(torch.float16 if half else torch.float32)
    module = module.eval()
    args = tuple(torch.from_numpy(v) for v in example_feeds(graph).values())
    names = INPUTS[graph] + OUTPUTS[graph]
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # the tracer warns about its own deprecation and about shape inference of dynamic axes
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(tmp), input_names=INPUTS[graph], output_names=OUTPUTS[graph],
                          dynamic_axes={k: v for k, v in DYNAMIC_AXES.items() if k in names},
                          opset_version=OPSET, do_constant_folding=True, dynamo=False)
        onnx.checker.check_model(str(tmp), full_check=True)
    return Path(path)


def graph_precisions(path: str | Path) -> dict[str, int]:
    """Count of nodes computing in FP16 and in FP32 (by their first float input/output), to show
    that an FP16 graph is FP16 except for its statistics."""
    import onnx

    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    types = {v.name: v.type.tensor_type.elem_type for v in
             list(model.graph.value_info) + list(model.graph.input) + list(model.graph.output)}
    types.update({t.name: t.data_type for t in model.graph.initializer})
    counts = {"fp16": 0, "fp32": 0}
    for node in model.graph.node:
        kinds = [types.get(name) for name in list(node.output) + list(node.input)]
        if onnx.TensorProto.FLOAT16 in kinds and node.op_type != "Cast":
            counts["fp16"] += 1
        elif onnx.TensorProto.FLOAT in kinds and node.op_type != "Cast":
            counts["fp32"] += 1
    return counts
