"""Exported graphs for `nst-fast run --backend onnxruntime|tensorrt` when no export folder is given:
exported once into the cache, keyed by everything that changes the graph, and quickly validated.
A cached file whose hash no longer matches its manifest is exported again."""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from importlib.metadata import version
from pathlib import Path

import torch

from nst_fast.errors import NSTError
from nst_fast.graphs import Graph
from nst_fast.weights import cache_dir, sha256_file

from . import validate
from .onnx_export import OPSET
from .pipeline import MANIFEST, Plan, default_style, export_validated, find_graph, write_manifest


def graph_cache() -> Path:
    return Path(os.environ.get("NST_FAST_GRAPH_CACHE") or cache_dir() / "graphs")


def graph_key(graph: Graph, precision: str) -> str:
    parts = {"source": graph.source, "kind": graph.kind, "precision": precision, "opset": OPSET,
             "torch": torch.__version__, "nst_fast": version("nst-fast")}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def graph_locator(graphs_dir: Path | None = None, engine_profile=None):
    """The `graph_file(graph, backend)` callback of nst_fast.methods: ONNX files from an export
    folder or the cache, and for TensorRT an engine built from them (cached too)."""
    def locate(graph: Graph, backend) -> Path:
        precision = "fp16" if backend.half else "fp32"
        if graphs_dir is not None:
            path = find_graph(graphs_dir, graph.name, precision)
            if path is None:
                raise NSTError(f"{graphs_dir}: holds no validated {graph.name} graph in {precision}; "
                               f"export it with nst-fast export{' --fp16' if backend.half else ''} -o {graphs_dir}")
        else:
            path = cached_onnx(graph, precision)
        if backend.kind != "tensorrt":
            return path
        from .engine import ensure_engine

        return ensure_engine(path, engine_profile, path.parent / "engines")
    return locate


def cached_onnx(graph: Graph, precision: str, root: Path | None = None) -> Path:
    directory = (root or graph_cache()) / f"{graph.name}-{graph_key(graph, precision)}"
    found = _intact(directory, graph.name, precision)
    if found:
        return found
    plan = Plan(images=validate.extreme_images(96), sizes=validate.QUICK_SIZES, fp16_storage=False)
    entry = export_validated(graph, precision, directory, plan, default_style(graph, None))
    if not entry["validation"]["passed"]:
        failed = [c for c in entry["validation"]["checks"] if not c["passed"]]
        raise NSTError(f"exported {graph.name} ({precision}) disagrees with torch: {failed[0]}")
    write_manifest(directory, [entry])
    return directory / entry["file"]


def _intact(directory: Path, name: str, precision: str) -> Path | None:
    manifest = directory / MANIFEST
    if not manifest.exists():
        return None
    try:
        entry = next(g for g in json.loads(manifest.read_text())["graphs"]
                     if g["name"] == name and g["precision"] == precision and g.get("file"))
        path = directory / entry["file"]
        if sha256_file(path) == entry["sha256"]:
            return path
    except (ValueError, KeyError, StopIteration, OSError):
        pass
    warnings.warn(f"{directory}: cached {name} ({precision}) is damaged or incomplete; exporting it again")
    return None
