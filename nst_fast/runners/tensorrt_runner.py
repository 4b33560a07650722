"""TensorRT backend: build a serialized engine from an ONNX graph of the graph contract, and run one.

This is the only module that imports `tensorrt` and `pycuda`, and it imports them inside functions:
importing it works on any machine, using it needs the GPU stack (TensorRT 10 or 11, and pycuda or
a CUDA build of torch for buffers and the stream).

Precision comes from the ONNX graph, not from builder flags: the FP16 export already holds FP16
weights and convolutions with FP32 islands for the statistics, which is what a strongly typed
network executes. TensorRT 10 needs NetworkDefinitionCreationFlag.STRONGLY_TYPED for that;
TensorRT 11 removed BuilderFlag.FP16 and weak typing, and every network is strongly typed
(docs.nvidia.com/deeplearning/tensorrt/latest/api/migration/tensorrt-10x-to-11x-python-api-reference.html,
and the 11.0.0 Python Builder page: STRONGLY_TYPED "retained for API compatibility but is ignored").
"""
from __future__ import annotations

import contextlib
import functools
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import NSTError, WeightsError
from ..fileio import atomic_path
from .base import ExtraInputs, Runner

TRT_INSTALL = ("pip install 'nst-fast[gpu]' (TensorRT 10 or 11 from NVIDIA's package index, "
               "plus pycuda or a CUDA build of torch)")

Dims = tuple[int, ...]
ShapeRange = tuple[Dims, Dims, Dims]  # (min, opt, max) of one graph input


# ---------------------------------------------------------------------------------------------
# Imports and device facts


def _major(version: str) -> int:
    return int(version.split(".")[0])


def import_tensorrt():
    """The tensorrt module, or an NSTError saying how to install it."""
    try:
        import tensorrt
    except (ImportError, OSError) as e:  # OSError: the wheel is there but libnvinfer is not
        detail = "" if isinstance(e, ModuleNotFoundError) else f" ({e})"
        raise NSTError(f"tensorrt is not installed{detail}: {TRT_INSTALL}") from None
    if _major(tensorrt.__version__) < 10:
        raise NSTError(f"tensorrt {tensorrt.__version__} is too old: nst-fast needs TensorRT 10 or 11 "
                       "(execute_async_v3, named tensors, strongly typed networks)")
    return tensorrt


def _pycuda_driver():
    """pycuda.driver, or None where pycuda is not installed (torch CUDA tensors are the fallback)."""
    try:
        import pycuda.driver
    except ImportError:
        return None
    return pycuda.driver


def _cuda_torch():
    """torch, if it is a CUDA build that sees a GPU; otherwise an NSTError naming both ways out."""
    try:
        import torch
    except ImportError:
        torch = None
    if torch is None or not torch.cuda.is_available():
        raise NSTError("the TensorRT backend needs pycuda (pip install pycuda) or a CUDA build of torch "
                       "that sees a GPU, to move data to and from the GPU")
    return torch


@dataclass(frozen=True)
class DeviceInfo:
    """What an engine is tied to: it only deserializes on the TensorRT version and GPU that built it."""

    trt_version: str
    gpu_name: str
    compute_capability: str  # "9.0"


def device_info(device: int = 0) -> DeviceInfo:
    trt = import_tensorrt()
    cuda = _pycuda_driver()
    if cuda is not None:  # pycuda/doc/driver.rst: init(), Device(n).name(), .compute_capability()
        cuda.init()
        gpu = cuda.Device(device)
        name, capability = gpu.name(), gpu.compute_capability()
    else:
        torch = _cuda_torch()
        name, capability = torch.cuda.get_device_name(device), torch.cuda.get_device_capability(device)
    return DeviceInfo(trt.__version__, name, f"{capability[0]}.{capability[1]}")


@functools.lru_cache(maxsize=1)
def _logger():
    """One logger for the process, created on first use and kept for its lifetime."""
    trt = import_tensorrt()
    return trt.Logger(trt.Logger.WARNING)


# ---------------------------------------------------------------------------------------------
# Building


def build_engine(onnx_path: str | os.PathLike, profiles: Mapping[str, ShapeRange],
                 timing_cache_path: str | os.PathLike | None = None, progress: bool = True,
                 workspace_bytes: int | None = None) -> bytes:
    """Parse `onnx_path` into a strongly typed network, add one optimisation profile holding
    `profiles[name] = (min, opt, max)` for every graph input, and build a serialized engine.
    The timing cache at `timing_cache_path` is loaded if it exists and saved (atomically) after."""
    trt = import_tensorrt()
    onnx_path = Path(onnx_path)
    builder = trt.Builder(_logger())
    network = builder.create_network(_network_flags(trt))
    parser = _parse_onnx(trt, network, onnx_path)  # noqa: F841 -- the parser owns the weights until the build
    config = builder.create_builder_config()
    if workspace_bytes:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    config.add_optimization_profile(_optimization_profile(builder, network, profiles, onnx_path))
    cache_path = Path(timing_cache_path) if timing_cache_path is not None else None
    _use_timing_cache(config, cache_path)
    monitor = _progress_monitor(trt) if progress else None
    if monitor is not None:
        config.progress_monitor = monitor
    try:
        serialized = builder.build_serialized_network(network, config)
    finally:
        if monitor is not None:
            monitor.close()
    if not serialized:  # None on failure; TensorRT has logged why
        raise NSTError(f"{onnx_path}: TensorRT could not build an engine (see its messages above)")
    if cache_path is not None:
        _save_timing_cache(config, cache_path)
    return bytes(serialized)


def _network_flags(trt) -> int:
    if _major(trt.__version__) >= 11:
        return 0  # every network is strongly typed; the flag is deprecated and ignored
    return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)


def _parse_onnx(trt, network, onnx_path: Path):
    try:
        data = onnx_path.read_bytes()
    except OSError as e:
        raise NSTError(f"{onnx_path}: cannot read the ONNX graph ({e.strerror})") from None
    parser = trt.OnnxParser(network, _logger())
    if not parser.parse(data):  # our exports are self-contained: no external-data path needed
        errors = "; ".join(str(parser.get_error(i)).strip() for i in range(parser.num_errors))
        raise NSTError(f"{onnx_path}: TensorRT's ONNX parser rejected the graph: {errors or 'no details'}")
    return parser


def _optimization_profile(builder, network, profiles: Mapping[str, ShapeRange], onnx_path: Path):
    names = [network.get_input(i).name for i in range(network.num_inputs)]
    missing, unknown = [n for n in names if n not in profiles], sorted(set(profiles) - set(names))
    if missing or unknown:
        raise NSTError(f"{onnx_path}: graph inputs are {names}; no shapes given for {missing}, "
                       f"shapes given for unknown inputs {unknown}")
    profile = builder.create_optimization_profile()
    for name in names:
        low, opt, high = profiles[name]
        profile.set_shape(name, low, opt, high)
    return profile


def _use_timing_cache(config, path: Path | None) -> None:
    """Start from the saved timing cache (one per TensorRT version and GPU), else from an empty one:
    a damaged or foreign cache only costs build time, never the build."""
    data = path.read_bytes() if path is not None and path.is_file() else b""
    try:
        cache = config.create_timing_cache(data)
        usable = cache is not None and config.set_timing_cache(cache, ignore_mismatch=False) is not False
    except RuntimeError:
        usable = False
    if not usable:
        warnings.warn(f"{path}: TensorRT timing cache not usable here; starting an empty one")
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)


def _save_timing_cache(config, path: Path) -> None:
    cache = config.get_timing_cache()  # the loaded cache plus what this build timed
    if cache is not None:
        with atomic_path(path) as tmp:
            tmp.write_bytes(bytes(cache.serialize()))


def _progress_monitor(trt):
    """A tqdm bar per build phase through IProgressMonitor (TensorRT 10+), or None without it."""
    if not hasattr(trt, "IProgressMonitor"):
        return None
    from tqdm import tqdm

    class TqdmProgressMonitor(trt.IProgressMonitor):
        # TensorRT calls these from several threads, and the C++ side is noexcept: lock, and let
        # no exception escape into it.
        def __init__(self):
            trt.IProgressMonitor.__init__(self)  # as NVIDIA's simple_progress_monitor sample does
            self._bars: dict[str, Any] = {}
            self._lock = threading.Lock()

        def phase_start(self, phase_name, parent_phase, num_steps):
            try:
                with self._lock:
                    self._bars[phase_name] = tqdm(total=num_steps, desc=phase_name, unit="step",
                                                  position=len(self._bars), leave=parent_phase is None)
            except Exception:
                pass

        def step_complete(self, phase_name, step):
            try:
                with self._lock:
                    bar = self._bars.get(phase_name)
                    if bar is not None:  # steps are numbered from 0
                        bar.update(max(0, step + 1 - bar.n))
            except Exception:
                pass
            return True  # False would cancel the build

        def phase_finish(self, phase_name):
            try:
                with self._lock:
                    bar = self._bars.pop(phase_name, None)
                if bar is not None:
                    bar.close()
            except Exception:
                pass

        def close(self):
            with self._lock:
                bars, self._bars = list(self._bars.values()), {}
            for bar in bars:
                bar.close()

    return TqdmProgressMonitor()


# ---------------------------------------------------------------------------------------------
# Device memory: pycuda where installed, torch CUDA tensors otherwise


@dataclass
class _Buffer:
    """A pinned host staging area and a device allocation of the same capacity."""

    host: np.ndarray  # uint8, pinned
    ptr: int  # device address
    keep: tuple = field(default=())  # the objects that own the memory

    @property
    def capacity(self) -> int:
        return self.host.nbytes


class _PyCudaMemory:
    """Buffers and stream through pycuda, so a deployment needs neither torch nor a CUDA build of it.
    Calls as in NVIDIA's TensorRT samples/python/common.py (pagelocked_empty, mem_alloc,
    memcpy_*_async, Stream.handle) and pycuda/doc/driver.rst (retain_primary_context, push, pop)."""

    def __init__(self, cuda, device: int = 0):
        try:
            cuda.init()
            # the primary context is the one the CUDA runtime, and so TensorRT, uses
            self.context = cuda.Device(device).retain_primary_context()
        except cuda.Error as e:
            raise NSTError(f"pycuda cannot open GPU {device} ({e})") from None
        self.cuda = cuda
        with self._current():
            self.stream = cuda.Stream()
        self.stream_handle = self.stream.handle

    @contextlib.contextmanager
    def _current(self):
        """The context made current for one call: pycuda needs one on the calling thread, and the
        batch runner may call from any thread."""
        self.context.push()
        try:
            yield
        finally:
            self.cuda.Context.pop()

    def allocate(self, nbytes: int) -> _Buffer:
        with self._current():
            device = self.cuda.mem_alloc(nbytes)
            return _Buffer(self.cuda.pagelocked_empty(nbytes, np.uint8), int(device), (device,))

    def upload(self, buffer: _Buffer, array: np.ndarray) -> None:
        host = _stage(buffer, array)
        with self._current():
            self.cuda.memcpy_htod_async(buffer.keep[0], host, self.stream)

    def download(self, buffer: _Buffer, nbytes: int) -> np.ndarray:
        host = buffer.host[:nbytes]
        with self._current():
            self.cuda.memcpy_dtoh_async(host, buffer.keep[0], self.stream)
        return host

    def synchronize(self) -> None:
        with self._current():
            self.stream.synchronize()


class _TorchMemory:
    """Buffers and stream as torch CUDA tensors, where pycuda is not installed. A stream of our own,
    not the default one, so TensorRT's work does not serialise with everything else."""

    def __init__(self, torch):
        self.torch = torch
        self.stream = torch.cuda.Stream()
        self.stream_handle = self.stream.cuda_stream

    def allocate(self, nbytes: int) -> _Buffer:
        host = self.torch.empty(nbytes, dtype=self.torch.uint8, pin_memory=True)
        device = self.torch.empty(nbytes, dtype=self.torch.uint8, device="cuda")
        return _Buffer(host.numpy(), device.data_ptr(), (host, device))

    def upload(self, buffer: _Buffer, array: np.ndarray) -> None:
        nbytes = _stage(buffer, array).nbytes
        host, device = buffer.keep
        with self.torch.cuda.stream(self.stream):
            device[:nbytes].copy_(host[:nbytes], non_blocking=True)

    def download(self, buffer: _Buffer, nbytes: int) -> np.ndarray:
        host, device = buffer.keep
        with self.torch.cuda.stream(self.stream):
            host[:nbytes].copy_(device[:nbytes], non_blocking=True)
        return buffer.host[:nbytes]

    def synchronize(self) -> None:
        self.stream.synchronize()


def _stage(buffer: _Buffer, array: np.ndarray) -> np.ndarray:
    """Copy `array` into the pinned staging area (pinned memory makes the upload truly async)."""
    host = buffer.host[:array.nbytes]
    host[...] = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    return host


def cuda_memory() -> _PyCudaMemory | _TorchMemory:
    cuda = _pycuda_driver()
    return _PyCudaMemory(cuda) if cuda is not None else _TorchMemory(_cuda_torch())


# ---------------------------------------------------------------------------------------------
# Running


def check_feeds(feeds: Mapping[str, np.ndarray], inputs: Mapping[str, np.dtype], label: str) -> None:
    """Raise an NSTError unless `feeds` holds exactly the engine's inputs, each of its dtype."""
    missing, unknown = sorted(inputs.keys() - feeds.keys()), sorted(feeds.keys() - inputs.keys())
    if missing or unknown:
        raise NSTError(f"{label}: the engine's inputs are {sorted(inputs)}; missing {missing}, "
                       f"unexpected {unknown}")
    wrong = [f"{name} is {np.asarray(feeds[name]).dtype}, the engine takes {dtype}"
             for name, dtype in inputs.items() if np.asarray(feeds[name]).dtype != dtype]
    if wrong:
        raise NSTError(f"{label}: wrong input dtype: {'; '.join(wrong)}")


class TensorRTRunner(Runner):
    """Runs a serialized TensorRT engine with named tensors and execute_async_v3 (the TensorRT 10/11
    API, as used by Polygraphy's TrtRunner), reusing device buffers while the shapes allow."""

    name = "tensorrt"

    def __init__(self, engine: str | os.PathLike | bytes, extra_inputs: ExtraInputs | None = None):
        super().__init__(extra_inputs)
        self.source = engine
        self.label = "<engine bytes>" if isinstance(engine, (bytes, bytearray)) else str(engine)
        self.engine = self.context = self.memory = self._runtime = None
        self.inputs: dict[str, np.dtype] = {}
        self.outputs: dict[str, np.dtype] = {}
        self._buffers: dict[str, _Buffer] = {}

    def activate(self) -> None:
        trt = import_tensorrt()
        data = self._engine_bytes()
        self.memory = cuda_memory()
        self._runtime = trt.Runtime(_logger())  # kept for as long as the engine it deserializes
        self.engine = self._deserialize(trt, data)
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise NSTError(f"{self.label}: TensorRT could not create an execution context (GPU memory?)")
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self.inputs if is_input else self.outputs)[name] = dtype

    def _engine_bytes(self) -> bytes:
        if isinstance(self.source, (bytes, bytearray)):
            return bytes(self.source)
        try:
            return Path(self.source).read_bytes()
        except OSError as e:
            raise WeightsError(f"{self.label}: cannot read the TensorRT engine ({e.strerror})") from None

    def _deserialize(self, trt, data: bytes):
        try:
            engine = self._runtime.deserialize_cuda_engine(data) if data else None
        except (RuntimeError, TypeError, ValueError):
            engine = None
        if engine is None:  # None on failure; TensorRT has logged why
            raise WeightsError(f"{self.label}: not an engine TensorRT {trt.__version__} can load on this GPU "
                               "(damaged, or built by another TensorRT version or GPU); delete it and "
                               "rebuild it with `nst-fast export --engine`")
        return engine

    def execute(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.context is None:
            raise NSTError(f"{self.label}: activate() the runner before running it")
        check_feeds(feeds, self.inputs, self.label)
        for name in self.inputs:
            self._bind_input(name, np.ascontiguousarray(feeds[name]))
        # output shapes follow from the input shapes just set
        shapes = {name: tuple(int(d) for d in self.context.get_tensor_shape(name)) for name in self.outputs}
        sizes = {name: int(np.prod(shape)) * self.outputs[name].itemsize for name, shape in shapes.items()}
        for name, nbytes in sizes.items():
            self._bind(name, nbytes)
        if not self.context.execute_async_v3(self.memory.stream_handle):
            raise NSTError(f"{self.label}: TensorRT execution failed (see its messages above)")
        hosts = {name: self.memory.download(self._buffers[name], nbytes) for name, nbytes in sizes.items()}
        self.memory.synchronize()  # also makes replacing a buffer in the next call safe
        # copies: the staging buffers are reused by the next batch
        return {name: hosts[name].view(self.outputs[name]).reshape(shapes[name]).copy() for name in shapes}

    def _bind_input(self, name: str, array: np.ndarray) -> None:
        if not self.context.set_input_shape(name, array.shape):
            raise NSTError(f"{self.label}: input {name} of shape {array.shape} is outside the engine's "
                           "optimisation profile; rebuild it with a wider --min-shape/--max-shape")
        self.memory.upload(self._bind(name, array.nbytes), array)

    def _bind(self, name: str, nbytes: int) -> _Buffer:
        """The buffer for tensor `name`, grown if this shape needs more, bound to the context."""
        buffer = self._buffers.get(name)
        if buffer is None or buffer.capacity < nbytes:
            buffer = self._buffers[name] = self.memory.allocate(max(nbytes, 1))
        self.context.set_tensor_address(name, buffer.ptr)
        return buffer

    def close(self) -> None:
        if self.memory is not None:
            self.memory.synchronize()
        # released in reverse order of creation
        self._buffers.clear()
        self.context = self.engine = self._runtime = self.memory = None
