"""TensorRT engines: optimisation profiles from --min/--opt/--max-shape, and the engine cache.

Pure Python: nothing here imports tensorrt (nst_fast/runners/tensorrt_runner.py does, lazily), so
profiles and cache keys are tested on any machine.

An engine only loads on the TensorRT version and GPU that built it, and only accepts shapes inside
its profile. So the cache key covers the ONNX bytes, the TensorRT version, the GPU name, its
compute capability and the profile: a change to any of them builds a new engine instead of
failing at load time.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

from nst_fast.errors import NSTError
from nst_fast.images import MIN_SIDE
from nst_fast.fileio import atomic_path
from nst_fast.runners import tensorrt_runner
# device_info(): TensorRT version, GPU name and compute capability here (asks TensorRT, lazily)
from nst_fast.runners.tensorrt_runner import DeviceInfo, ShapeRange, device_info  # noqa: F401

Shape = tuple[int, int, int]  # (N, H, W) of the `images` input

DEFAULT_MIN: Shape = (1, 256, 256)
DEFAULT_OPT: Shape = (4, 512, 512)
DEFAULT_MAX: Shape = (8, 1024, 1024)
FLAGS = {"min": "--min-shape", "opt": "--opt-shape", "max": "--max-shape"}

STYLE_CHANNELS = 512  # relu4_1 channels: the length of style_mean and style_std
# The smallest side the graphs take (images.MIN_SIDE: AdaIN's mirrored margin needs more than 32 px);
# the batch runner pads H and W to multiples of 8 and up to it.
SIDE_MULTIPLE = 8

KEY_FORMAT = 1  # bump when the meaning of a cached engine changes
KEY_CHARS = 24

_SHAPE = re.compile(r"^(?:(\d+)x)?(\d+)x(\d+)$")


class ShapeError(NSTError, ValueError):
    """A bad --min/--opt/--max-shape. A ValueError too, so the CLI can report it as a usage error."""


def parse_shape(text: str, flag: str = "shape") -> Shape:
    """'4x512x512' -> (4, 512, 512); 'HxW' means N = 1."""
    match = _SHAPE.match(text.strip().lower().replace(" ", ""))
    if match is None:
        raise ShapeError(f"{flag} {text!r}: expected NxHxW or HxW, e.g. 4x512x512 or 512x512")
    n, h, w = match.groups()
    return int(n or 1), int(h), int(w)


def _format(shape: Shape) -> str:
    return "x".join(map(str, shape))


def _check_shape(flag: str, shape: Shape) -> None:
    n, h, w = shape
    if n < 1:
        raise ShapeError(f"{flag} {_format(shape)}: N (the batch size) must be at least 1")
    if min(h, w) < MIN_SIDE:
        raise ShapeError(f"{flag} {_format(shape)}: H and W must be at least {MIN_SIDE}")
    if h % SIDE_MULTIPLE or w % SIDE_MULTIPLE:
        raise ShapeError(f"{flag} {_format(shape)}: H and W must be multiples of {SIDE_MULTIPLE}")


@dataclass(frozen=True)
class Profile:
    """The (N, H, W) range one engine accepts for `images`; the other inputs follow from it."""

    min: Shape = DEFAULT_MIN
    opt: Shape = DEFAULT_OPT
    max: Shape = DEFAULT_MAX

    def __post_init__(self):
        for which, flag in FLAGS.items():
            _check_shape(flag, getattr(self, which))
        if not all(a <= b <= c for a, b, c in zip(self.min, self.opt, self.max)):
            raise ShapeError(f"{FLAGS['min']} <= {FLAGS['opt']} <= {FLAGS['max']} must hold for N, H and W "
                           f"(got {self})")

    @classmethod
    def from_strings(cls, min: str | None = None, opt: str | None = None, max: str | None = None) -> Profile:
        """From the CLI flags; a flag left out keeps its default."""
        given = {which: parse_shape(text, FLAGS[which])
                 for which, text in {"min": min, "opt": opt, "max": max}.items() if text}
        return cls(**given)

    def __str__(self) -> str:
        return f"min {_format(self.min)}, opt {_format(self.opt)}, max {_format(self.max)}"

    def as_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    def input_shapes(self, graph_inputs: Iterable[str]) -> dict[str, ShapeRange]:
        """(min, opt, max) shape of every graph input of the graph contract, by name."""
        shapes = {}
        for name in graph_inputs:
            if name == "images":  # uint8 N x H x W x 3
                shapes[name] = tuple((*s, 3) for s in (self.min, self.opt, self.max))
            elif name in ("style_mean", "style_std"):  # one style for the batch, or one per photo
                shapes[name] = ((1, STYLE_CHANNELS), (self.opt[0], STYLE_CHANNELS), (self.max[0], STYLE_CHANNELS))
            elif name == "alpha":  # style strength, one scalar for the batch
                shapes[name] = ((1,), (1,), (1,))
            else:
                raise NSTError(f"graph input {name!r} is not part of the graph contract; "
                               "no optimisation profile can be derived for it")
        return shapes


# ---------------------------------------------------------------------------------------------
# Engine cache


def default_cache_dir() -> Path:
    # The rule of nst_fast.weights.cache_dir(), written out: importing that module imports torch,
    # and a TensorRT deployment needs no torch.
    return Path(os.environ.get("NST_FAST_CACHE") or Path.home() / ".cache" / "nst-fast") / "engines"


def _key_fields(onnx_bytes: bytes, trt_version: str, gpu_name: str, compute_capability: str,
                profile: Profile) -> dict:
    return {"format": KEY_FORMAT, "onnx_sha256": hashlib.sha256(onnx_bytes).hexdigest(),
            "tensorrt": trt_version, "gpu": gpu_name, "compute_capability": compute_capability,
            "profile": profile.as_dict()}


def _hash(fields: dict) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:KEY_CHARS]


def cache_key(onnx_bytes: bytes, trt_version: str, gpu_name: str, compute_capability: str,
              profile: Profile) -> str:
    return _hash(_key_fields(onnx_bytes, trt_version, gpu_name, compute_capability, profile))


def engine_path(cache_dir: str | os.PathLike, onnx_path: str | os.PathLike, key: str) -> Path:
    return Path(cache_dir) / f"{Path(onnx_path).stem}-{key}.engine"


def sidecar_path(engine: Path) -> Path:
    return engine.with_suffix(".json")


def timing_cache_path(cache_dir: str | os.PathLike, info: DeviceInfo) -> Path:
    """One timing cache per TensorRT version and GPU: timings from elsewhere do not apply."""
    gpu = re.sub(r"[^a-z0-9]+", "-", info.gpu_name.lower()).strip("-")
    return Path(cache_dir) / f"timing-trt{info.trt_version}-{gpu}-sm{info.compute_capability.replace('.', '')}.cache"


def ensure_engine(onnx_path: str | os.PathLike, profile: Profile, cache_dir: str | os.PathLike | None = None, *,
                  build: Callable[[Path, Mapping[str, ShapeRange], Path], bytes] | None = None,
                  device_info: Callable[[], DeviceInfo] | None = None) -> Path:
    """The cached engine for `onnx_path` on this TensorRT and GPU with `profile`, built first if
    there is none (or the cached one is damaged). `build(onnx_path, input_shapes, timing_cache_path)`
    returns the serialized engine; it defaults to tensorrt_runner.build_engine."""
    onnx_path = Path(onnx_path)
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        onnx_bytes = onnx_path.read_bytes()
    except OSError as e:
        raise NSTError(f"{onnx_path}: cannot read the ONNX graph ({e.strerror})") from None
    info = (device_info or tensorrt_runner.device_info)()
    fields = _key_fields(onnx_bytes, info.trt_version, info.gpu_name, info.compute_capability, profile)
    key = _hash(fields)
    path = engine_path(cache_dir, onnx_path, key)
    if _cached(path, key):
        return path
    shapes = profile.input_shapes(onnx_input_names(onnx_bytes, onnx_path))
    data = (build or tensorrt_runner.build_engine)(onnx_path, shapes, timing_cache_path(cache_dir, info))
    _write(path, data, {**fields, "key": key, "engine_bytes": len(data), "onnx": str(onnx_path),
                        "inputs": {name: [list(s) for s in r] for name, r in shapes.items()}})
    return path


def _cached(path: Path, key: str) -> bool:
    """Whether `path` holds a complete engine for `key`; a damaged one is reported, then rebuilt."""
    if not path.exists():
        return False
    problem = _damage(path, key)
    if problem:
        warnings.warn(f"{path}: cached TensorRT engine {problem}; rebuilding it")
    return problem is None


def _damage(path: Path, key: str) -> str | None:
    try:
        meta = json.loads(sidecar_path(path).read_text())
    except (OSError, ValueError):
        meta = None
    if not isinstance(meta, dict):
        return f"has no readable description ({sidecar_path(path).name})"
    size = path.stat().st_size
    if meta.get("key") != key:
        return f"is described as another engine (key {meta.get('key')!r})"
    if size == 0 or meta.get("engine_bytes") != size:
        return f"is truncated or damaged ({size} bytes, {meta.get('engine_bytes')} expected)"
    return None


def _write(path: Path, data: bytes, meta: dict) -> None:
    """Engine first, description second, each atomically: a crash in between leaves an engine
    without a description, which the next run rebuilds."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    with atomic_path(sidecar_path(path)) as tmp:
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")


def onnx_input_names(onnx_bytes: bytes, onnx_path: Path) -> list[str]:
    """The graph's real inputs (initializers listed as inputs by old exporters excluded)."""
    try:
        import onnx
    except ImportError:
        raise NSTError("onnx is not installed: pip install 'nst-fast[onnx]'") from None
    try:
        graph = onnx.load_model_from_string(onnx_bytes).graph
    except Exception as e:  # protobuf raises DecodeError and friends for a damaged file
        raise NSTError(f"{onnx_path}: not a readable ONNX graph ({type(e).__name__})") from None
    weights = {w.name for w in graph.initializer}
    return [i.name for i in graph.input if i.name not in weights]
