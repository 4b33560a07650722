"""`nst-fast export`: graphs -> checked ONNX files that passed validation, and a manifest.

A graph file only appears under its final name after onnxruntime has matched torch on every
validation image and shape; a graph that fails is removed and the export fails.
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from nst_fast.errors import NSTError
from nst_fast.fileio import atomic_path
from nst_fast.graphs import Graph
from nst_fast.weights import sha256_file

from . import validate
from .onnx_export import DYNAMIC_AXES, INPUTS, OPSET, OUTPUTS, export_graph, graph_precisions

MANIFEST = "manifest.json"


@dataclass
class Plan:
    """What to validate against: real photos and synthetic extremes, at which shapes."""

    images: list[tuple[str, np.ndarray]]
    sizes: list[tuple[int, int]] = field(default_factory=lambda: list(validate.SIZES))
    uhd: bool = False  # also every extreme image and the first photo at 3840 x 2160
    fp16_storage: bool = True  # FP16 graphs: also check FP16 storage of every activation (validate.fp16_storage)
    threads: int | None = None


def feeds_for(graph: Graph, style: tuple[np.ndarray, np.ndarray] | None):
    """Validation inputs of a stylizer graph besides the images: a real style, full strength."""
    alpha = {"alpha": np.ones(1, np.float32)}
    if graph.kind == "transformer":
        return lambda images: {"images": images, **alpha}
    mean, std = style
    return lambda images: {"images": images, "style_mean": mean, "style_std": std, **alpha}


def session(path: Path, threads: int | None = None, backend: str = "onnxruntime", precision: str = "fp32"):
    """What runs `path` for `backend` at `precision`, with onnxruntime's `run(names, feeds)`."""
    if backend == "onnxruntime":
        from nst_fast.runners.onnxruntime_runner import OnnxRuntimeRunner

        runner = OnnxRuntimeRunner(path, "cpu", threads)
        runner.activate()
        return runner.session
    from nst_fast.runners.openvino_runner import OpenVINORunner

    runner = OpenVINORunner(path, precision, threads)
    runner.activate()
    return RunnerSession(runner)


class RunnerSession:
    """A runner behind onnxruntime's `session.run(output_names, feeds)`, which validate.py calls."""

    def __init__(self, runner):
        self.runner = runner

    def run(self, names: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        outputs = self.runner.execute(feeds)
        return [outputs[name] for name in names]


def checks_for(graph: Graph, precision: str, path: Path, plan: Plan, style, bar, backend: str = "onnxruntime") -> list:
    def report(check):
        bar.update(1)
        if not check.passed:
            bar.write("  " + check.line())

    sess = session(path, plan.threads, backend, precision)
    if graph.kind == "style_encoder":
        return validate.statistics_checks(precision, graph.module, sess, plan.images, plan.sizes, report)
    feeds = feeds_for(graph, style)
    runtime = backend if backend == "onnxruntime" else f"{backend}-{precision}"
    checks = validate.onnx_checks(graph.name, precision, graph.module, sess, feeds, plan.images, plan.sizes, report,
                                  runtime)
    if plan.uhd:
        extremes = [im for im in plan.images if im[0] in ("saturated", "high_contrast", "noise")]
        photos = [im for im in plan.images if im not in extremes][:1]
        checks += validate.onnx_checks(graph.name, precision, graph.module, sess, feeds, extremes + photos,
                                       [validate.UHD], report, runtime)
    if precision == "fp16" and backend == "onnxruntime" and plan.fp16_storage:
        checks += validate.half_storage_checks(graph.name, graph.module, feeds, plan.images, plan.sizes, report)
    return checks


def check_count(graph: Graph, precision: str, plan: Plan, backend: str = "onnxruntime") -> int:
    n = len(plan.images) * len(plan.sizes)
    if graph.kind != "style_encoder":
        n += plan.uhd * min(len(plan.images), 4)
        n += (precision == "fp16" and backend == "onnxruntime" and plan.fp16_storage) * len(plan.images) * len(plan.sizes)
    return n


def file_name(graph: Graph, precision: str, backend: str = "onnxruntime") -> str:
    """onnxruntime (and TensorRT) run an ONNX file per precision; OpenVINO compiles the FP32 ONNX file
    in the precision asked for, or runs the IR (.xml + .bin) that NNCF quantized for INT8."""
    if backend == "openvino":
        return f"{graph.name}.int8.xml" if precision == "int8" else f"{graph.name}.fp32.onnx"
    return f"{graph.name}.{precision}.onnx"


def companions(path: Path) -> list[Path]:
    """A graph file and the files it needs beside it (an OpenVINO IR's weights)."""
    return [path, path.with_suffix(".bin")] if path.suffix == ".xml" else [path]


def export_validated(graph: Graph, precision: str, out_dir: Path, plan: Plan, style=None, progress: bool = True,
                     backend: str = "onnxruntime", calibration: list | None = None) -> dict:
    """Export one graph for one backend and precision (INT8: quantized on the `calibration`
    photos), validate it, and return its manifest entry."""
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / file_name(graph, precision, backend)
    # one per process: two runs exporting into the same cache at once must not validate each other's file
    stem = out_dir / f".{graph.name}.{precision}.pid{os.getpid()}.unvalidated"
    onnx_file = stem.with_suffix(".onnx")
    candidate = stem.with_suffix(final.suffix)
    start = time.perf_counter()
    try:
        export_graph(graph.module, graph.kind, onnx_file, half=precision == "fp16" and backend == "onnxruntime")
        if precision == "int8":
            from .quantize import calibration_styles, quantize

            quantize(onnx_file, graph, calibration or [], calibration_styles(graph), candidate)
        export_seconds = time.perf_counter() - start
        validation = validated(graph, precision, candidate, plan, style, progress, backend)
        if validation["passed"]:
            for made, kept in zip(companions(candidate), companions(final)):
                os.replace(made, kept)
        else:
            for old in companions(final):  # an older export of it must not pass for this one
                old.unlink(missing_ok=True)
    finally:
        for path in {onnx_file, *companions(candidate)}:
            path.unlink(missing_ok=True)
    return entry_for(graph, precision, backend, final if validation["passed"] else None, validation, export_seconds)


def validate_existing(graph: Graph, precision: str, backend: str, out_dir: Path, file: str, plan: Plan,
                      style=None, progress: bool = True) -> dict:
    """The manifest entry for running an already validated graph file with another backend or
    precision (OpenVINO BF16 on the FP32 ONNX file), after validating it there."""
    validation = validated(graph, precision, out_dir / file, plan, style, progress, backend)
    return entry_for(graph, precision, backend, out_dir / file if validation["passed"] else None, validation, 0.0)


def openvino_entries(graph: Graph, fp32_file: str, out_dir: Path, plan: Plan, style=None,
                     int8_photos: list | None = None):
    """Manifest entries for OpenVINO: the FP32 file validated in the precision `run` would pick for
    OpenVINO here, and, given calibration photos, an INT8 graph quantized on them. None without openvino."""
    from nst_fast.backends import auto_precision, openvino_precisions

    if not openvino_precisions():
        if int8_photos is not None:
            raise NSTError("INT8 graphs need openvino (and onnx): pip install openvino onnx")
        return
    yield validate_existing(graph, auto_precision("openvino", "cpu")[0], "openvino", out_dir, fp32_file, plan, style)
    if int8_photos is not None:
        yield export_validated(graph, "int8", out_dir, plan, style, backend="openvino", calibration=int8_photos)


def validated(graph: Graph, precision: str, path: Path, plan: Plan, style, progress: bool, backend: str) -> dict:
    start = time.perf_counter()
    label = f"{backend} {precision}" if backend != "onnxruntime" else precision
    with tqdm(total=check_count(graph, precision, plan, backend), desc=f"validate {graph.name} {label}",
              unit="check", disable=None if progress else True) as bar:
        checks = checks_for(graph, precision, path, plan, style, bar, backend)
    return {**validate.summary(checks), "seconds": round(time.perf_counter() - start, 1)}


def entry_for(graph: Graph, precision: str, backend: str, path: Path | None, validation: dict,
              export_seconds: float) -> dict:
    written = {}
    if path is not None:
        written = {"file": path.name, "sha256": sha256_file(path), "bytes": sum(p.stat().st_size for p in companions(path))}
        if path.suffix == ".xml":
            written["weights_sha256"] = sha256_file(path.with_suffix(".bin"))
        else:
            written["node_precisions"] = graph_precisions(path)
    return {
        "name": graph.name, "kind": graph.kind, "precision": precision, "backend": backend, "file": None, **written,
        "inputs": {name: signature(name) for name in INPUTS[graph.kind]},
        "outputs": {name: signature(name) for name in OUTPUTS[graph.kind]},
        "source": graph.source, "export_seconds": round(export_seconds, 2), "validation": validation,
    }


SIGNATURES = {
    "images": ("uint8", ["N", "H", "W", 3]), "stylized": ("uint8", ["N", "H", "W", 3]),
    "style_mean": ("float32", ["S", 512]), "style_std": ("float32", ["S", 512]), "alpha": ("float32", [1]),
    "finite": ("bool", ["N"]), "mean": ("float32", ["N", 512]), "std": ("float32", ["N", 512]),
}
assert set(SIGNATURES) == set(DYNAMIC_AXES) | {"alpha"}


def signature(name: str) -> dict:
    dtype, shape = SIGNATURES[name]
    return {"dtype": dtype, "shape": shape}


def write_manifest(out_dir: Path, entries: list[dict]) -> Path:
    """Merge `entries` into DIR/manifest.json (by graph name and precision) and write it atomically."""
    path = out_dir / MANIFEST
    graphs = {}
    if path.exists():
        try:
            graphs = {key(g): g for g in json.loads(path.read_text())["graphs"]}
        except (ValueError, KeyError, TypeError):
            pass  # a damaged manifest is rewritten from what this export knows
    graphs.update({key(e): e for e in entries})
    manifest = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "environment": environment(),
                "opset": OPSET, "exporter": "torch.onnx TorchScript tracer (dynamo=False)",
                "graphs": sorted(graphs.values(), key=key)}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(json_safe(manifest), indent=1, allow_nan=False) + "\n")
    return path


def key(entry: dict) -> tuple[str, str, str]:
    """What identifies a manifest entry; entries written before OpenVINO are onnxruntime's."""
    return entry["name"], entry["precision"], entry.get("backend", "onnxruntime")


def json_safe(value):
    """JSON has no infinity: an exact match's PSNR (inf) is written as null."""
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def environment() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version(), "machine": platform.machine(), "torch": torch.__version__}
    for name in ("onnx", "onnxruntime", "openvino", "nncf", "nst-fast"):
        try:
            found[name.replace("-", "_")] = version(name)
        except PackageNotFoundError:
            pass
    return found


def manifest_entry(out_dir: Path, name: str, precision: str, backend: str = "onnxruntime") -> dict | None:
    """The manifest's entry for a validated (name, precision, backend) graph in `out_dir`, if any."""
    path = out_dir / MANIFEST
    if not path.exists():
        return None
    try:
        graphs = json.loads(path.read_text())["graphs"]
    except (ValueError, KeyError, TypeError) as e:
        raise NSTError(f"{path}: damaged manifest ({type(e).__name__}: {e}); export again") from None
    return next((g for g in graphs if g.get("file") and key(g) == (name, precision, backend)), None)


def verified_file(out_dir: Path, entry: dict, graph: Graph) -> Path:
    """The entry's file, if it is intact and was exported from the weights `graph` was built from."""
    path = out_dir / entry["file"]
    keys = ("sha256", "encoder_id", "style")
    if {k: entry["source"].get(k) for k in keys} != {k: graph.source.get(k) for k in keys}:
        raise NSTError(f"{path}: exported from other weights ({entry['source'].get('weights')}) than the ones asked "
                       f"for ({graph.source.get('weights')}); export those, or leave out --graphs")
    weights = path.with_suffix(".bin")
    if not path.is_file() or sha256_file(path) != entry.get("sha256") or \
            ("weights_sha256" in entry and (not weights.is_file() or sha256_file(weights) != entry["weights_sha256"])):
        raise NSTError(f"{path}: missing, or its hash differs from {out_dir / MANIFEST} (damaged?); export again")
    return path


def default_style(graph: Graph, style_encoder: Graph | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Statistics of a real painting for validating an AdaIN stylizer: the bundled Starry Night
    preset, or (for another VGG) the style encoder's statistics of a saturated test card."""
    if graph.kind != "adain_stylizer":
        return None
    from nst_fast.errors import WeightsError
    from nst_fast.styles import PRESETS, load_preset

    try:
        preset = load_preset(PRESETS / "starry_night.safetensors", graph.source["encoder_id"])
        return preset.mean.numpy(), preset.std.numpy()
    except WeightsError:
        if style_encoder is None:
            from .onnx_export import example_feeds

            feeds = example_feeds("adain_stylizer")
            return feeds["style_mean"], feeds["style_std"]
        with torch.inference_mode():
            card = torch.from_numpy(validate.extreme_images(256)[0][1])[None]
            return tuple(t.numpy() for t in style_encoder.module(card))
