"""TensorRT engines: profiles, cache keys and the engine cache without TensorRT; building and running
an engine where TensorRT and a GPU are at hand (marked gpu, skipped elsewhere with the reason)."""
import json
import subprocess
import sys
import types

import numpy as np
import pytest

from export.engine import (DEFAULT_MAX, DEFAULT_MIN, DEFAULT_OPT, Profile, cache_key, default_cache_dir,
                           engine_path, ensure_engine, parse_shape, sidecar_path, timing_cache_path)
from nst_fast.errors import NSTError, WeightsError
from nst_fast.runners import tensorrt_runner
from nst_fast.runners.tensorrt_runner import DeviceInfo, TensorRTRunner, build_engine, check_feeds

# The input sets of the graph contract (export/onnx_export.py INPUTS).
GRAPH_INPUTS = {
    "style_encoder": ["images"],
    "adain_stylizer": ["images", "style_mean", "style_std", "alpha"],
    "transformer": ["images", "alpha"],
}
H100 = DeviceInfo("10.9.0", "NVIDIA H100 80GB HBM3", "9.0")
NO_TRT = "tensorrt not installed (not installable in this environment; see README)"


# --- profiles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, shape", [("4x512x512", (4, 512, 512)), ("512x768", (1, 512, 768)),
                                         (" 2X64 x 96 ", (2, 64, 96))])
def test_parse_shape(text, shape):
    assert parse_shape(text) == shape


@pytest.mark.parametrize("text", ["", "512", "4x512x512x3", "ax512x512", "-1x512x512", "4x512x", "4,512,512"])
def test_parse_shape_rejects_malformed_text_with_usage(text):
    with pytest.raises(NSTError, match=r"--opt-shape .*expected NxHxW or HxW, e\.g\. 4x512x512"):
        parse_shape(text, "--opt-shape")


def test_profile_defaults_and_partial_flags():
    assert Profile() == Profile(DEFAULT_MIN, DEFAULT_OPT, DEFAULT_MAX)
    assert (DEFAULT_MIN, DEFAULT_OPT, DEFAULT_MAX) == ((1, 256, 256), (4, 512, 512), (8, 1024, 1024))
    profile = Profile.from_strings(opt="2x384x512")
    assert (profile.min, profile.opt, profile.max) == (DEFAULT_MIN, (2, 384, 512), DEFAULT_MAX)
    assert Profile.from_strings("64x64", "64x64", "64x64").max == (1, 64, 64)  # min = opt = max is fine


@pytest.mark.parametrize("flags, message", [
    ({"opt": "4x500x512"}, r"--opt-shape 4x500x512: H and W must be multiples of 8"),
    ({"min": "1x8x256"}, r"--min-shape 1x8x256: H and W must be at least 40"),
    ({"min": "0x256x256"}, r"--min-shape 0x256x256: N \(the batch size\) must be at least 1"),
    ({"max": "8x1024x1020"}, r"--max-shape 8x1024x1020: H and W must be multiples of 8"),
    ({"opt": "4x2048x512"}, r"--min-shape <= --opt-shape <= --max-shape must hold for N, H and W"),
    ({"min": "16x256x256"}, r"--min-shape <= --opt-shape <= --max-shape"),
    ({"max": "8x1024x256"}, r"\(got min 1x256x256, opt 4x512x512, max 8x1024x256\)"),
])
def test_profile_validation_errors_name_the_flag(flags, message):
    with pytest.raises(NSTError, match=message) as error:
        Profile.from_strings(**flags)
    assert isinstance(error.value, ValueError)  # the CLI turns ValueErrors into usage errors


def test_input_shapes_of_each_graph():
    profile = Profile((1, 256, 256), (4, 512, 512), (8, 1024, 1024))
    images = ((1, 256, 256, 3), (4, 512, 512, 3), (8, 1024, 1024, 3))
    stats = ((1, 512), (4, 512), (8, 512))
    assert profile.input_shapes(GRAPH_INPUTS["style_encoder"]) == {"images": images}
    assert profile.input_shapes(GRAPH_INPUTS["transformer"]) == {"images": images, "alpha": ((1,), (1,), (1,))}
    assert profile.input_shapes(GRAPH_INPUTS["adain_stylizer"]) == {
        "images": images, "style_mean": stats, "style_std": stats, "alpha": ((1,), (1,), (1,))}


def test_input_shapes_rejects_inputs_outside_the_contract():
    with pytest.raises(NSTError, match="'mask' is not part of the graph contract"):
        Profile().input_shapes(["images", "mask"])


# --- cache keys ----------------------------------------------------------------------------------


def key(onnx=b"graph", trt="10.9.0", gpu="NVIDIA H100 80GB HBM3", cc="9.0", profile=Profile()):
    return cache_key(onnx, trt, gpu, cc, profile)


def test_cache_key_is_stable_and_short_hex():
    assert key() == key() == cache_key(b"graph", "10.9.0", "NVIDIA H100 80GB HBM3", "9.0", Profile())
    assert len(key()) == 24 and int(key(), 16) >= 0


@pytest.mark.parametrize("change", [dict(onnx=b"graph2"), dict(trt="11.0.0"), dict(trt="10.9.1"),
                                    dict(gpu="NVIDIA H200"), dict(cc="8.9"),
                                    dict(profile=Profile.from_strings(max="8x1024x1016")),
                                    dict(profile=Profile.from_strings(opt="2x512x512"))])
def test_cache_key_changes_with_each_input(change):
    assert key(**change) != key()


def test_engine_and_timing_cache_paths(tmp_path):
    assert engine_path(tmp_path, "out/adain_stylizer.fp16.onnx", "abc") == tmp_path / "adain_stylizer.fp16-abc.engine"
    assert sidecar_path(tmp_path / "x-abc.engine") == tmp_path / "x-abc.json"
    assert timing_cache_path(tmp_path, H100) == tmp_path / "timing-trt10.9.0-nvidia-h100-80gb-hbm3-sm90.cache"


def test_default_cache_dir_honours_nst_fast_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("NST_FAST_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "engines"
    monkeypatch.delenv("NST_FAST_CACHE")
    assert default_cache_dir().parts[-3:] == (".cache", "nst-fast", "engines")


# --- ensure_engine with a fake builder -----------------------------------------------------------


def tiny_onnx(path, scale=1.0):
    """A real (tiny) graph-contract ONNX: stylized = clip(images * alpha * scale) as uint8."""
    import onnx
    from onnx import TensorProto, helper

    images = helper.make_tensor_value_info("images", TensorProto.UINT8, ["N", "H", "W", 3])
    alpha = helper.make_tensor_value_info("alpha", TensorProto.FLOAT, [1])
    stylized = helper.make_tensor_value_info("stylized", TensorProto.UINT8, ["N", "H", "W", 3])
    scale_init = helper.make_tensor("scale", TensorProto.FLOAT, [1], [scale])
    lo, hi = helper.make_tensor("lo", TensorProto.FLOAT, [], [0.0]), helper.make_tensor("hi", TensorProto.FLOAT, [], [255.0])
    nodes = [
        helper.make_node("Cast", ["images"], ["x"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["x", "alpha"], ["xa"]),
        helper.make_node("Mul", ["xa", "scale"], ["xs"]),
        # an FP16 island, as in the FP16 exports: exact here (multiples of 0.5 below 256)
        helper.make_node("Cast", ["xs"], ["h"], to=TensorProto.FLOAT16),
        helper.make_node("Cast", ["h"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Clip", ["f", "lo", "hi"], ["c"]),
        helper.make_node("Cast", ["c"], ["stylized"], to=TensorProto.UINT8),
    ]
    graph = helper.make_graph(nodes, "tiny", [images, alpha], [stylized], [scale_init, lo, hi])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


class FakeBuild:
    """Stands in for tensorrt_runner.build_engine and records its calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, onnx_path, profiles, timing_cache):
        self.calls.append((onnx_path, profiles, timing_cache))
        return b"engine %d for " % len(self.calls) + onnx_path.read_bytes()[:16]


@pytest.fixture
def cache(tmp_path):
    onnx_path = tiny_onnx(tmp_path / "transformer.onnx")
    build = FakeBuild()

    def ensure(profile=Profile(), info=H100):
        return ensure_engine(onnx_path, profile, tmp_path / "engines", build=build, device_info=lambda: info)

    return types.SimpleNamespace(onnx=onnx_path, dir=tmp_path / "engines", build=build, ensure=ensure)


def test_ensure_engine_builds_on_a_miss(cache):
    path = cache.ensure()
    assert len(cache.build.calls) == 1
    onnx_path, profiles, timing = cache.build.calls[0]
    assert onnx_path == cache.onnx
    assert profiles == Profile().input_shapes(["images", "alpha"])  # from the graph's own inputs
    assert timing == timing_cache_path(cache.dir, H100)
    assert path.parent == cache.dir and path.read_bytes().startswith(b"engine 1")
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["engine_bytes"] == path.stat().st_size
    assert (meta["tensorrt"], meta["gpu"], meta["compute_capability"]) == ("10.9.0", H100.gpu_name, "9.0")
    assert meta["profile"] == {"min": [1, 256, 256], "opt": [4, 512, 512], "max": [8, 1024, 1024]}
    assert meta["inputs"]["images"][2] == [8, 1024, 1024, 3]
    assert meta["key"] in path.name
    assert sorted(p.name for p in cache.dir.iterdir()) == sorted([path.name, sidecar_path(path).name])


def test_ensure_engine_hits_the_cache(cache, recwarn):
    first = cache.ensure()
    assert cache.ensure() == first
    assert len(cache.build.calls) == 1 and not recwarn.list


@pytest.mark.parametrize("change", [dict(info=DeviceInfo("11.0.0", H100.gpu_name, "9.0")),
                                    dict(info=DeviceInfo("10.9.0", "NVIDIA H200", "9.0")),
                                    dict(profile=Profile.from_strings(max="4x1024x1024"))])
def test_ensure_engine_builds_anew_when_the_key_changes(cache, change):
    first = cache.ensure()
    second = cache.ensure(**change)
    assert second != first and len(cache.build.calls) == 2
    assert first.is_file() and second.read_bytes().startswith(b"engine 2")


def test_ensure_engine_builds_anew_when_the_onnx_changes(cache):
    first = cache.ensure()
    tiny_onnx(cache.onnx, scale=0.5)
    assert cache.ensure() != first and len(cache.build.calls) == 2


@pytest.mark.parametrize("damage", ["truncate", "empty", "no sidecar", "garbage sidecar", "list sidecar",
                                    "foreign sidecar"])
def test_ensure_engine_rebuilds_a_damaged_engine_with_a_warning(cache, damage):
    path = cache.ensure()
    sidecar = sidecar_path(path)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:5])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "no sidecar":
        sidecar.unlink()
    elif damage == "garbage sidecar":
        sidecar.write_text("{not json")
    elif damage == "list sidecar":
        sidecar.write_text("[]")
    else:
        sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "key": "other"}))
    with pytest.warns(UserWarning, match=rf"{path.name}: cached TensorRT engine .*; rebuilding it"):
        assert cache.ensure() == path
    assert len(cache.build.calls) == 2 and path.read_bytes().startswith(b"engine 2")
    assert json.loads(sidecar.read_text())["engine_bytes"] == path.stat().st_size
    assert cache.ensure() == path and len(cache.build.calls) == 2  # and it is a hit again


def test_ensure_engine_leaves_nothing_when_the_build_fails(cache):
    def failing(*args):
        raise NSTError("parser said no")

    with pytest.raises(NSTError, match="parser said no"):
        ensure_engine(cache.onnx, Profile(), cache.dir, build=failing, device_info=lambda: H100)
    assert not cache.dir.exists() or not any(cache.dir.iterdir())


def test_ensure_engine_errors(cache, tmp_path):
    with pytest.raises(NSTError, match="missing.onnx: cannot read the ONNX graph"):
        ensure_engine(tmp_path / "missing.onnx", Profile(), cache.dir, build=cache.build, device_info=lambda: H100)
    (tmp_path / "bad.onnx").write_bytes(b"\xff\x00 not protobuf")
    with pytest.raises(NSTError, match="bad.onnx: not a readable ONNX graph"):
        ensure_engine(tmp_path / "bad.onnx", Profile(), cache.dir, build=cache.build, device_info=lambda: H100)
    assert not cache.build.calls


# --- without TensorRT ----------------------------------------------------------------------------


def test_modules_import_without_tensorrt_pycuda_or_torch():
    code = ("import sys, export.engine, nst_fast.runners.tensorrt_runner; "
            "print(sorted(m for m in ('tensorrt', 'pycuda', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture
def no_tensorrt(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # `import tensorrt` now raises ImportError


def test_build_engine_without_tensorrt_says_how_to_install(no_tensorrt, tmp_path):
    with pytest.raises(NSTError, match=r"tensorrt is not installed: pip install 'nst-fast\[gpu\]'"):
        build_engine(tiny_onnx(tmp_path / "g.onnx"), {}, tmp_path / "timing.cache")


def test_runner_without_tensorrt_says_how_to_install(no_tensorrt, tmp_path):
    runner = TensorRTRunner(tmp_path / "g.engine")
    assert runner.name == "tensorrt"
    with pytest.raises(NSTError, match=r"tensorrt is not installed: pip install 'nst-fast\[gpu\]'"):
        runner.activate()
    with pytest.raises(NSTError, match="activate"):
        runner.execute({"images": np.zeros((1, 16, 16, 3), np.uint8)})


def test_device_info_without_tensorrt(no_tensorrt):
    from export.engine import device_info

    with pytest.raises(NSTError, match="tensorrt is not installed"):
        device_info()


def test_runner_passes_extra_inputs_through_the_base_class():
    runner = TensorRTRunner(b"engine", extra_inputs=lambda images: {"alpha": np.ones(1, np.float32)})
    assert runner.label == "<engine bytes>"
    assert set(runner.extra_inputs(np.zeros((1, 16, 16, 3), np.uint8))) == {"alpha"}


def test_check_feeds():
    inputs = {"images": np.dtype(np.uint8), "alpha": np.dtype(np.float32)}
    good = {"images": np.zeros((1, 16, 16, 3), np.uint8), "alpha": np.ones(1, np.float32)}
    check_feeds(good, inputs, "t.engine")
    with pytest.raises(NSTError, match=r"t.engine: the engine's inputs are \['alpha', 'images'\]; "
                                       r"missing \['alpha'\], unexpected \['style_mean'\]"):
        check_feeds({"images": good["images"], "style_mean": np.zeros((1, 512), np.float32)}, inputs, "t.engine")
    with pytest.raises(NSTError, match="alpha is float64, the engine takes float32"):
        check_feeds({**good, "alpha": np.ones(1)}, inputs, "t.engine")


@pytest.mark.parametrize("version, flags", [("10.0.1", 1 << 5), ("10.13.2", 1 << 5), ("11.0.0", 0), ("11.4.1", 0)])
def test_strong_typing_flag_per_tensorrt_major(version, flags):
    # TensorRT 10 opts in with STRONGLY_TYPED; 11 is always strongly typed (and may drop the member)
    fake = types.SimpleNamespace(__version__=version,
                                 NetworkDefinitionCreationFlag=types.SimpleNamespace(STRONGLY_TYPED=5))
    if version.startswith("11"):
        del fake.NetworkDefinitionCreationFlag
    assert tensorrt_runner._network_flags(fake) == flags


def test_progress_monitor_follows_nested_phases(capsys):
    class IProgressMonitor:  # what tensorrt provides: a base class whose __init__ must be called
        def __init__(self):
            self.base_initialised = True

    monitor = tensorrt_runner._progress_monitor(types.SimpleNamespace(IProgressMonitor=IProgressMonitor))
    assert monitor.base_initialised
    monitor.phase_start("Building engine", None, 3)
    monitor.phase_start("Tactic timing", "Building engine", 2)
    assert monitor.step_complete("Tactic timing", 0) is True
    assert monitor.step_complete("Tactic timing", 1) is True
    assert monitor._bars["Tactic timing"].n == 2
    monitor.phase_finish("Tactic timing")
    assert monitor.step_complete("unknown phase", 0) is True  # never raises into TensorRT
    monitor.close()
    assert not monitor._bars
    assert tensorrt_runner._progress_monitor(types.SimpleNamespace()) is None  # TensorRT without it


# --- the TensorRT glue against a fake tensorrt module (API shapes as in the TensorRT 10/11 docs) --


class FakeMemory:
    """Device memory as numpy arrays addressed by integers, in place of pycuda/torch."""

    def __init__(self):
        self.blocks, self.stream_handle = {}, 7

    def allocate(self, nbytes):
        ptr = 4096 * (len(self.blocks) + 1)
        self.blocks[ptr] = np.zeros(nbytes, np.uint8)
        return tensorrt_runner._Buffer(np.empty(nbytes, np.uint8), ptr, (self.blocks[ptr],))

    def upload(self, buffer, array):
        host = tensorrt_runner._stage(buffer, array)
        buffer.keep[0][:host.nbytes] = host

    def download(self, buffer, nbytes):
        buffer.host[:nbytes] = buffer.keep[0][:nbytes]
        return buffer.host[:nbytes]

    def synchronize(self):
        pass


class FakeContext:
    """Runs stylized = images * alpha (clipped), finite = True, on FakeMemory; batches up to 4."""

    def __init__(self, memory):
        self.memory, self.shapes, self.addresses = memory, {}, {}

    def set_input_shape(self, name, shape):
        self.shapes[name] = tuple(shape)
        return name != "images" or shape[0] <= 4

    def get_tensor_shape(self, name):
        return {"stylized": self.shapes["images"], "finite": self.shapes["images"][:1]}[name]

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = ptr
        return True

    def tensor(self, name, dtype, shape):
        return self.memory.blocks[self.addresses[name]].view(dtype)[:int(np.prod(shape))].reshape(shape)

    def execute_async_v3(self, stream_handle):
        assert stream_handle == self.memory.stream_handle
        images = self.tensor("images", np.uint8, self.shapes["images"])
        alpha = self.tensor("alpha", np.float32, (1,))
        self.tensor("stylized", np.uint8, images.shape)[...] = np.clip(images * alpha, 0, 255).astype(np.uint8)
        self.tensor("finite", np.bool_, images.shape[:1])[...] = True
        return True


class FakeEngine:
    tensors = {"images": (np.uint8, "in"), "alpha": (np.float32, "in"), "stylized": (np.uint8, "out"),
               "finite": (np.bool_, "out")}
    num_io_tensors = 4

    def __init__(self, memory):
        self.memory = memory

    def get_tensor_name(self, i):
        return list(self.tensors)[i]

    def get_tensor_dtype(self, name):
        return self.tensors[name][0]

    def get_tensor_mode(self, name):
        return self.tensors[name][1]

    def create_execution_context(self):
        return FakeContext(self.memory)


class FakeNetwork:
    def __init__(self, flags):
        self.flags, self.inputs = flags, []

    @property
    def num_inputs(self):
        return len(self.inputs)

    def get_input(self, i):
        return types.SimpleNamespace(name=self.inputs[i])


class FakeParser:
    def __init__(self, network, logger):
        self.network, self.errors = network, []

    def parse(self, data):
        if data.startswith(b"bad"):
            self.errors = ["In node 3 (Resize): UNSUPPORTED_NODE: scales computed at run time"]
            return False
        self.network.inputs = data.decode().split()
        return True

    @property
    def num_errors(self):
        return len(self.errors)

    def get_error(self, i):
        return self.errors[i]


class FakeConfig:
    def __init__(self):
        self.profiles, self.timing, self.progress_monitor, self.pool = [], None, None, None

    def set_memory_pool_limit(self, pool, size):
        self.pool = (pool, size)

    def add_optimization_profile(self, profile):
        self.profiles.append(profile)

    def create_timing_cache(self, data):
        return types.SimpleNamespace(serialize=lambda: bytes(data) + b"+timed")

    def set_timing_cache(self, cache, ignore_mismatch):
        self.timing = cache
        return True

    def get_timing_cache(self):
        return self.timing


class FakeLogger:
    WARNING = "warning"

    def __init__(self, severity):
        self.severity = severity


class FakeBuilder:
    built = []

    def __init__(self, logger):
        pass

    def create_network(self, flags):
        return FakeNetwork(flags)

    def create_builder_config(self):
        return FakeConfig()

    def create_optimization_profile(self):
        return FakeProfile()

    def build_serialized_network(self, network, config):
        FakeBuilder.built.append((network, config))
        return b"plan for " + " ".join(network.inputs).encode()


class FakeProfile:
    def __init__(self):
        self.shapes = {}

    def set_shape(self, name, low, opt, high):
        self.shapes[name] = (low, opt, high)


@pytest.fixture
def fake_trt(monkeypatch):
    memory = FakeMemory()
    FakeBuilder.built = []
    fake = types.SimpleNamespace(
        __version__="10.9.0", Logger=FakeLogger, Builder=FakeBuilder, OnnxParser=FakeParser,
        NetworkDefinitionCreationFlag=types.SimpleNamespace(STRONGLY_TYPED=5),
        MemoryPoolType=types.SimpleNamespace(WORKSPACE="workspace"),
        TensorIOMode=types.SimpleNamespace(INPUT="in", OUTPUT="out"), nptype=lambda dtype: dtype,
        Runtime=lambda logger: types.SimpleNamespace(
            deserialize_cuda_engine=lambda data: FakeEngine(memory) if data == b"plan" else None))
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    monkeypatch.setattr(tensorrt_runner, "cuda_memory", lambda: memory)
    tensorrt_runner._logger.cache_clear()
    yield types.SimpleNamespace(module=fake, memory=memory)
    tensorrt_runner._logger.cache_clear()


def test_build_engine_glue(fake_trt, tmp_path):
    onnx_path, timing = tmp_path / "g.onnx", tmp_path / "timing.cache"
    onnx_path.write_bytes(b"images alpha")
    timing.write_bytes(b"old timings")
    shapes = Profile().input_shapes(["images", "alpha"])
    assert build_engine(onnx_path, shapes, timing, progress=False, workspace_bytes=1 << 30) == b"plan for images alpha"
    network, config = FakeBuilder.built[0]
    assert network.flags == 1 << 5  # strongly typed on TensorRT 10
    assert config.profiles[0].shapes == shapes and config.pool == ("workspace", 1 << 30)
    assert timing.read_bytes() == b"old timings+timed"  # loaded, extended, saved


def test_build_engine_reports_parser_errors_and_profile_mismatch(fake_trt, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"bad graph")
    with pytest.raises(NSTError, match=r"bad.onnx: TensorRT's ONNX parser rejected the graph: In node 3 \(Resize\)"):
        build_engine(bad, {}, None, progress=False)
    good = tmp_path / "g.onnx"
    good.write_bytes(b"images alpha")
    with pytest.raises(NSTError, match=r"graph inputs are \['images', 'alpha'\]; no shapes given for \['alpha'\]"):
        build_engine(good, Profile().input_shapes(["images"]), None, progress=False)


def test_runner_glue(fake_trt, tmp_path):
    (tmp_path / "g.engine").write_bytes(b"plan")
    runner = TensorRTRunner(tmp_path / "g.engine", extra_inputs=lambda images: {"alpha": np.full(1, 2, np.float32)})
    with runner:
        assert runner.inputs == {"images": np.uint8, "alpha": np.float32}
        assert runner.outputs == {"stylized": np.uint8, "finite": np.bool_}
        images = np.arange(2 * 16 * 24 * 3, dtype=np.uint8).reshape(2, 16, 24, 3) % 100
        out = runner.infer(images)  # through Runner.infer: extra inputs, `finite` checked
        np.testing.assert_array_equal(out, images * 2)
        allocated = len(fake_trt.memory.blocks)
        out[...] = 0  # a copy, not the staging buffer
        np.testing.assert_array_equal(runner.infer(images[:1]), images[:1] * 2)  # smaller: buffers reused
        assert len(fake_trt.memory.blocks) == allocated
        result = runner.execute({"images": np.ones((4, 32, 32, 3), np.uint8), "alpha": np.ones(1, np.float32)})
        assert result["stylized"].shape == (4, 32, 32, 3) and result["finite"].tolist() == [True] * 4
        assert len(fake_trt.memory.blocks) > allocated  # larger: grown
        with pytest.raises(NSTError, match=r"g.engine: input images of shape \(5, 16, 16, 3\) is outside"):
            runner.execute({"images": np.zeros((5, 16, 16, 3), np.uint8), "alpha": np.ones(1, np.float32)})
    assert runner.context is None and runner.engine is None


def test_runner_rejects_damaged_or_missing_engines(fake_trt, tmp_path):
    (tmp_path / "damaged.engine").write_bytes(b"pla")
    with pytest.raises(WeightsError, match=r"damaged.engine: not an engine TensorRT 10.9.0 can load"):
        TensorRTRunner(tmp_path / "damaged.engine").activate()
    with pytest.raises(WeightsError, match=r"gone.engine: cannot read the TensorRT engine"):
        TensorRTRunner(tmp_path / "gone.engine").activate()
    runner = TensorRTRunner(b"plan")
    runner.activate()
    assert runner.label == "<engine bytes>" and "finite" in runner.outputs


class FakeAllocation:
    """A pycuda DeviceAllocation: int() gives its address."""

    def __init__(self, ptr, nbytes):
        self.ptr, self.block = ptr, np.zeros(nbytes, np.uint8)

    def __int__(self):
        return self.ptr


def fake_pycuda():
    """The pycuda.driver calls _PyCudaMemory makes, on host memory; each must find a current context."""
    cuda = types.SimpleNamespace(Error=RuntimeError, depth=0, allocations=[])

    class Context:
        def push(self):
            cuda.depth += 1

        @staticmethod
        def pop():
            cuda.depth -= 1

    def in_context(*args):
        assert cuda.depth == 1, "pycuda called without a current context"

    def mem_alloc(nbytes):
        in_context()
        cuda.allocations.append(FakeAllocation(4096 * (len(cuda.allocations) + 1), nbytes))
        return cuda.allocations[-1]

    def htod(device, host, stream):
        in_context()
        device.block[:host.nbytes] = host

    def dtoh(host, device, stream):
        in_context()
        host[...] = device.block[:host.nbytes]

    cuda.init = lambda: None
    cuda.Context = Context
    cuda.Device = lambda n: types.SimpleNamespace(retain_primary_context=Context)
    cuda.Stream = lambda: types.SimpleNamespace(handle=99, synchronize=in_context)
    cuda.mem_alloc, cuda.memcpy_htod_async, cuda.memcpy_dtoh_async = mem_alloc, htod, dtoh
    cuda.pagelocked_empty = lambda n, dtype: np.empty(n, dtype)
    return cuda


def cpu_torch():
    """torch with CPU tensors standing in for CUDA ones: _TorchMemory's logic, minus the GPU."""
    import contextlib

    import torch

    stream = types.SimpleNamespace(cuda_stream=98, synchronize=lambda: None)
    cuda = types.SimpleNamespace(Stream=lambda: stream, stream=lambda s: contextlib.nullcontext())
    return types.SimpleNamespace(empty=lambda n, dtype, **where: torch.zeros(n, dtype=dtype), uint8=torch.uint8,
                                 cuda=cuda)


@pytest.mark.parametrize("backend", ["pycuda", "torch"])
def test_memory_backends_round_trip(backend):
    if backend == "pycuda":
        cuda = fake_pycuda()
        memory = tensorrt_runner._PyCudaMemory(cuda)
    else:
        memory = tensorrt_runner._TorchMemory(cpu_torch())
    assert memory.stream_handle == {"pycuda": 99, "torch": 98}[backend]
    buffer = memory.allocate(64)
    assert buffer.capacity == 64 and buffer.ptr
    data = np.arange(10, dtype=np.float32)
    memory.upload(buffer, data)
    got = memory.download(buffer, data.nbytes)
    memory.synchronize()
    np.testing.assert_array_equal(got.view(np.float32), data)
    if backend == "pycuda":
        assert cuda.depth == 0  # every push popped


# --- with TensorRT and a GPU ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def trt():
    trt = pytest.importorskip("tensorrt", reason=NO_TRT)
    try:
        tensorrt_runner.device_info()
    except NSTError as e:
        pytest.skip(f"TensorRT is installed but no GPU is usable: {e}")
    return trt


@pytest.fixture(scope="module")
def tiny_engine(trt, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("trt")
    onnx_path = tiny_onnx(tmp / "tiny.onnx", scale=0.5)
    profile = Profile((1, 16, 16), (2, 64, 96), (4, 128, 128))
    path = ensure_engine(onnx_path, profile, tmp / "engines")
    return types.SimpleNamespace(onnx=onnx_path, path=path, dir=tmp / "engines", profile=profile)


@pytest.mark.gpu
def test_engine_matches_onnxruntime_across_shapes(tiny_engine):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(tiny_engine.onnx), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    with TensorRTRunner(tiny_engine.path) as runner:
        assert runner.inputs == {"images": np.uint8, "alpha": np.float32}
        for n, h, w in [(2, 64, 96), (1, 16, 16), (4, 128, 128), (3, 40, 120), (2, 64, 96)]:  # reuse too
            feeds = {"images": rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8),
                     "alpha": np.array([rng.uniform(0.5, 3)], np.float32)}
            got = runner.execute(feeds)["stylized"]
            want = session.run(["stylized"], feeds)[0]
            assert got.dtype == np.uint8 and got.shape == (n, h, w, 3)
            np.testing.assert_array_equal(got, want)


@pytest.mark.gpu
def test_engine_cache_hit_and_timing_cache(tiny_engine):
    assert ensure_engine(tiny_engine.onnx, tiny_engine.profile, tiny_engine.dir) == tiny_engine.path
    assert any(p.name.startswith("timing-trt") for p in tiny_engine.dir.iterdir())


@pytest.mark.gpu
def test_shape_outside_the_profile_is_a_clear_error(tiny_engine):
    with TensorRTRunner(tiny_engine.path) as runner:
        with pytest.raises(NSTError, match="outside the engine's optimisation profile"):
            runner.execute({"images": np.zeros((8, 64, 64, 3), np.uint8), "alpha": np.ones(1, np.float32)})


@pytest.mark.gpu
def test_damaged_engine_is_a_weights_error(trt, tiny_engine, tmp_path):
    damaged = tmp_path / "damaged.engine"
    damaged.write_bytes(tiny_engine.path.read_bytes()[:100])
    with pytest.raises(WeightsError, match="damaged.engine: not an engine TensorRT .* can load"):
        TensorRTRunner(damaged).activate()


@pytest.mark.gpu
def test_parse_errors_name_the_file(trt, tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx file")
    with pytest.raises(NSTError, match="bad.onnx: TensorRT's ONNX parser rejected the graph"):
        build_engine(bad, {}, None, progress=False)
