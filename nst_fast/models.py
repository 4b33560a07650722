"""Inference weights: safetensors files with metadata saying what they are and which encoder
they were trained against. These are the files `nst-fast run` loads."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .adain import UPSAMPLING, Decoder
from .errors import WeightsError
from .fileio import atomic_path
from .transformer_net import TransformerNet

ASSETS = Path(__file__).parent / "assets"
DEFAULT_DECODER = ASSETS / "adain_decoder.safetensors"


def save_model(path: str | Path, model: torch.nn.Module, metadata: dict, dtype=torch.float16) -> None:
    """Write `model`'s weights (FP16 by default) with string metadata; atomically. A decoder's
    upsampling is recorded too (its own: the file must not describe another network)."""
    if isinstance(model, Decoder):
        metadata = {**metadata, "upsample": model.upsample}
    state = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()}
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    path = Path(path)
    if not path.is_file():
        hint = "; reinstall nst-fast (the file ships with it)" if path == DEFAULT_DECODER else ""
        raise WeightsError(f"{path}: weights file not found{hint}")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k).float() for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path}: not a readable safetensors file ({e})") from None
    return state, meta


def check_encoder(path, meta: dict, encoder_id: str) -> None:
    trained = meta.get("encoder_id")
    if trained != encoder_id:
        raise WeightsError(f"{path}: trained against VGG encoder {trained!r}, but the loaded encoder is "
                           f"{encoder_id!r}; use the VGG weights it was trained with (--vgg) or retrain")


def _load(path, build, method: str, encoder_id: str | None):
    """The network `build(path, meta)` makes, with the file's weights."""
    state, meta = read_weights(path)
    if "method" not in meta:
        raise WeightsError(f"{path}: has no nst-fast metadata (method, encoder_id), so it was not written by "
                           f"nst-fast; expected {method} weights from nst-fast train or save_model")
    if meta.get("method") != method:
        raise WeightsError(f"{path}: holds a {meta.get('method')!r} model, expected {method!r}")
    if encoder_id is not None:
        check_encoder(path, meta, encoder_id)
    model = build(path, meta)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise WeightsError(f"{path}: weights do not fit the {method} network ({str(e).splitlines()[0]})") from None
    return model.eval(), meta


def load_decoder(path=None, encoder_id: str | None = None) -> tuple[Decoder, dict]:
    return _load(path or DEFAULT_DECODER, decoder_for, "adain", encoder_id)


def decoder_for(path, meta: dict) -> Decoder:
    """The decoder a weights file's metadata describes."""
    return Decoder(upsampling(path, meta))


def upsampling(path, meta: dict) -> str:
    """A decoder file's upsampling; files from before `upsample` was recorded were all trained with
    nearest upsampling."""
    upsample = meta.get("upsample", "nearest")
    if upsample not in UPSAMPLING:
        raise WeightsError(f"{path}: a decoder with {upsample!r} upsampling, which this nst-fast does not know "
                           f"({', '.join(UPSAMPLING)}); a newer version wrote it")
    return upsample


def load_transformer(path, encoder_id: str | None = None) -> tuple[TransformerNet, dict]:
    return _load(path, lambda path, meta: TransformerNet(), "transformer", encoder_id)
