"""The graphs of each method, built from their weights files, with where they came from.

`run` feeds them to a backend (torch runs the modules, onnxruntime and TensorRT run their export)
and `export` traces them; `source` is what an exported file's cache key and manifest record.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from .errors import StyleError
from .models import ASSETS, DEFAULT_DECODER, load_decoder, load_transformer
from .stylizers import AdaINStylizer, StyleEncoder, TransformerStylizer
from .weights import sha256_file, vgg_weights

TRANSFORMERS = ASSETS / "transformer"


@dataclass
class Graph:
    name: str  # file stem of its export: style_encoder, adain_stylizer, transformer_<style>
    kind: str  # its input/output signature: style_encoder | adain_stylizer | transformer
    module: torch.nn.Module  # FP32, eval mode
    source: dict = field(default_factory=dict)  # weights file, its sha256, encoder id, style


def adain_graphs(decoder: str | Path | None = None, vgg: str | None = None) -> tuple[Graph, Graph]:
    """(style_encoder, adain_stylizer), sharing one VGG encoder."""
    weights = vgg_weights(vgg)
    encoder = weights.build("relu4_1")
    path = Path(decoder) if decoder else DEFAULT_DECODER
    net, _ = load_decoder(path, weights.encoder_id)
    source = {"weights": str(path), "sha256": sha256_file(path), "encoder_id": weights.encoder_id}
    return (Graph("style_encoder", "style_encoder", StyleEncoder(encoder).eval(), source),
            Graph("adain_stylizer", "adain_stylizer", AdaINStylizer(encoder, net).eval(), source))


def transformer_path(style: str, model: str | Path | None = None) -> Path:
    if model:
        return Path(model)
    path = TRANSFORMERS / f"{style}.safetensors"
    if not path.is_file():
        raise StyleError(f"no transformer network for style {style!r} (bundled: {', '.join(bundled_transformers()) or 'none yet'}); "
                       "pass one with --model FILE")
    return path


def bundled_transformers() -> list[str]:
    return sorted(p.stem for p in TRANSFORMERS.glob("*.safetensors"))


def transformer_graph(style: str | None = None, model: str | Path | None = None) -> Graph:
    path = transformer_path(style or "", model)
    net, meta = load_transformer(path)
    name = meta.get("style") or path.stem
    source = {"weights": str(path), "sha256": sha256_file(path), "style": name}
    return Graph(f"transformer_{name}", "transformer", TransformerStylizer(net).eval(), source)
