"""Exported graphs for `nst-fast run --backend onnxruntime|tensorrt` when no export folder is given:
exported once into the cache, keyed by everything that changes the graph, and quickly validated.
A cached file whose hash no longer matches its manifest is exported again."""
from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from importlib.metadata import version
from pathlib import Path

import torch

from nst_fast.errors import GraphRefused, NSTError
from nst_fast.graphs import Graph
from nst_fast.weights import cache_dir

from . import validate
from .onnx_export import OPSET
from .pipeline import Plan, default_style, export_validated, key, manifest_entry, verified_file, write_manifest


def graph_cache() -> Path:
    return Path(os.environ.get("NST_FAST_GRAPH_CACHE") or cache_dir() / "graphs")


def code_hash() -> str:
    """The code a graph is traced from: a change to it must not reuse graphs cached before."""
    from nst_fast import adain, stylizers, transformer_net, vgg

    from . import onnx_export, quantize

    digest = hashlib.sha256()
    for module in (adain, stylizers, transformer_net, vgg, onnx_export, quantize):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def graph_key(graph: Graph, precision: str, backend: str = "onnxruntime") -> str:
    """Each backend and precision gets a graph of its own, validated on that backend in that precision."""
    parts = {"source": graph.source, "kind": graph.kind, "precision": precision, "backend": backend, "opset": OPSET,
             "torch": torch.__version__, "nst_fast": version("nst-fast"), "code": code_hash()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def graph_locator(graphs_dir: Path | None = None, engine_profile=None, progress: bool = True):
    """The `graph_file(graph, backend)` callback of nst_fast.methods: ONNX files from an export
    folder (checked against the weights asked for) or the cache, and for TensorRT an engine built
    from them (cached too)."""
    def locate(graph: Graph, backend) -> Path:
        precision = backend.precision
        runtime = "openvino" if backend.kind == "openvino" else "onnxruntime"  # TensorRT builds from onnxruntime's
        if graphs_dir is not None:
            entry = manifest_entry(graphs_dir, graph.name, precision, runtime)
            if entry is None:
                flag = {"fp16": " --fp16", "int8": " --int8"}.get(precision, "")
                raise NSTError(f"{graphs_dir}: holds no validated {graph.name} graph for {runtime} in {precision}; "
                               f"export it with nst-fast export{flag} -o {graphs_dir}")
            path = verified_file(graphs_dir, entry, graph)
            if backend.kind == "tensorrt" and covers(entry.get("engine_profile"), engine_profile):
                return graphs_dir / entry["engine"]  # built by `nst-fast export --engine` for shapes like these
        else:
            path = cached_onnx(graph, precision, progress=progress, backend=runtime)
        if backend.kind != "tensorrt":
            return path
        from .engine import ensure_engine

        return ensure_engine(path, engine_profile, path.parent / "engines")
    return locate


def covers(built: dict | None, needed) -> bool:
    """Whether an engine profile (as in a manifest) admits every shape of the profile `needed`."""
    if not built or needed is None:
        return False
    return all(low <= n for low, n in zip(built["min"], needed.min)) and \
        all(n <= high for high, n in zip(built["max"], needed.max))


def cached_onnx(graph: Graph, precision: str, root: Path | None = None, progress: bool = True,
                backend: str = "onnxruntime") -> Path:
    """The cached graph file for `backend` in `precision`, exported and validated on first use.
    INT8 is calibrated and validated on the sample photos as well as the synthetic extremes."""
    directory = (root or graph_cache()) / f"{graph.name}-{graph_key(graph, precision, backend)}"
    refused = _refused(directory, graph, precision, backend)
    if refused:
        raise GraphRefused(refused)
    found = _intact(directory, graph, precision, backend)
    if found:
        return found
    if progress:  # a bar shows only on a terminal; a log should still say where the seconds went
        print(f"exporting the {graph.name} graph ({precision}, {backend}) for first use, checked against torch, "
              f"into {directory}", file=sys.stderr)
    photos = sample_photos() if precision == "int8" else []
    plan = Plan(images=photos + validate.extreme_images(96), sizes=validate.QUICK_SIZES, fp16_storage=False)
    entry = export_validated(graph, precision, directory, plan, default_style(graph, None), progress, backend, photos)
    write_manifest(directory, [entry])  # a refusal too, so a rerun says so without exporting again
    if not entry["validation"]["passed"]:
        raise GraphRefused(refusal(entry))
    return directory / entry["file"]


def sample_photos() -> list:
    """scikit-image's sample photos (inside its wheel), for INT8 calibration; none without it."""
    from nst_fast.backends import has

    if not has("skimage"):
        return []
    from nst_fast.cli import sample_photos as photos

    return photos()


def refusal(entry: dict) -> str:
    c = next(c for c in entry["validation"]["checks"] if not c["passed"])
    found = f"PSNR {c['psnr']:.1f} dB" if "psnr" in c else f"relative error {c['rel_error']:.1e}"
    return (f"exported {entry['name']} ({entry.get('backend', 'onnxruntime')} {entry['precision']}) disagrees with "
            f"torch FP32, so it is refused: {found}, finite {c['finite']} on {c['image']} {c['height']}x{c['width']}")


def _refused(directory: Path, graph: Graph, precision: str, backend: str) -> str | None:
    """Why an earlier export of exactly this graph was refused, if it was."""
    try:
        graphs = json.loads((directory / "manifest.json").read_text())["graphs"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    entry = next((g for g in graphs if key(g) == (graph.name, precision, backend) and not g.get("file")), None)
    return refusal(entry) if entry else None


def _intact(directory: Path, graph: Graph, precision: str, backend: str) -> Path | None:
    if not (directory / "manifest.json").exists():
        return None
    try:
        entry = manifest_entry(directory, graph.name, precision, backend)
        if entry is not None:
            return verified_file(directory, entry, graph)
    except NSTError:
        pass
    warnings.warn(f"{directory}: cached {graph.name} ({precision}) is damaged or incomplete; exporting it again")
    return None
