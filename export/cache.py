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

from nst_fast.errors import NSTError
from nst_fast.graphs import Graph
from nst_fast.weights import cache_dir

from . import validate
from .onnx_export import OPSET
from .pipeline import Plan, default_style, export_validated, manifest_entry, verified_file, write_manifest


def graph_cache() -> Path:
    return Path(os.environ.get("NST_FAST_GRAPH_CACHE") or cache_dir() / "graphs")


def code_hash() -> str:
    """The code a graph is traced from: a change to it must not reuse graphs cached before."""
    from nst_fast import adain, stylizers, transformer_net, vgg

    from . import onnx_export

    digest = hashlib.sha256()
    for module in (adain, stylizers, transformer_net, vgg, onnx_export):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def graph_key(graph: Graph, precision: str) -> str:
    parts = {"source": graph.source, "kind": graph.kind, "precision": precision, "opset": OPSET,
             "torch": torch.__version__, "nst_fast": version("nst-fast"), "code": code_hash()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def graph_locator(graphs_dir: Path | None = None, engine_profile=None, progress: bool = True):
    """The `graph_file(graph, backend)` callback of nst_fast.methods: ONNX files from an export
    folder (checked against the weights asked for) or the cache, and for TensorRT an engine built
    from them (cached too)."""
    def locate(graph: Graph, backend) -> Path:
        precision = "fp16" if backend.half else "fp32"
        if graphs_dir is not None:
            entry = manifest_entry(graphs_dir, graph.name, precision)
            if entry is None:
                raise NSTError(f"{graphs_dir}: holds no validated {graph.name} graph in {precision}; "
                               f"export it with nst-fast export{' --fp16' if backend.half else ''} -o {graphs_dir}")
            path = verified_file(graphs_dir, entry, graph)
            if backend.kind == "tensorrt" and covers(entry.get("engine_profile"), engine_profile):
                return graphs_dir / entry["engine"]  # built by `nst-fast export --engine` for shapes like these
        else:
            path = cached_onnx(graph, precision, progress=progress)
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


def cached_onnx(graph: Graph, precision: str, root: Path | None = None, progress: bool = True) -> Path:
    directory = (root or graph_cache()) / f"{graph.name}-{graph_key(graph, precision)}"
    found = _intact(directory, graph, precision)
    if found:
        return found
    if progress:  # a bar shows only on a terminal; a log should still say where the seconds went
        print(f"exporting the {graph.name} graph ({precision}) for first use, checked against torch, into {directory}",
              file=sys.stderr)
    plan = Plan(images=validate.extreme_images(96), sizes=validate.QUICK_SIZES, fp16_storage=False)
    entry = export_validated(graph, precision, directory, plan, default_style(graph, None), progress)
    if not entry["validation"]["passed"]:
        failed = [c for c in entry["validation"]["checks"] if not c["passed"]]
        raise NSTError(f"exported {graph.name} ({precision}) disagrees with torch: {validate.check_line(failed[0])}")
    write_manifest(directory, [entry])
    return directory / entry["file"]


def _intact(directory: Path, graph: Graph, precision: str) -> Path | None:
    if not (directory / "manifest.json").exists():
        return None
    try:
        entry = manifest_entry(directory, graph.name, precision)
        if entry is not None:
            return verified_file(directory, entry, graph)
    except NSTError:
        pass
    warnings.warn(f"{directory}: cached {graph.name} ({precision}) is damaged or incomplete; exporting it again")
    return None
