"""The OpenVINO backend (FP32, BF16, INT8 by NNCF), its validation and cache, and --precision."""
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

ov = pytest.importorskip("openvino", reason="openvino is not installed (pip install openvino)")
pytest.importorskip("onnx", reason="onnx is not installed: the graphs are exported to ONNX first")

from export import cache, validate  # noqa: E402
from export.onnx_export import example_feeds, export_graph  # noqa: E402
from export.pipeline import Plan, export_validated, manifest_entry, write_manifest  # noqa: E402
from nst_fast import backends  # noqa: E402
from nst_fast.cli import main  # noqa: E402
from nst_fast.errors import NSTError  # noqa: E402
from nst_fast.graphs import Graph  # noqa: E402
from nst_fast.images import load_image, save_image  # noqa: E402
from nst_fast.runners.openvino_runner import OpenVINORunner, cpu_precisions  # noqa: E402
from nst_fast.stylizers import TransformerStylizer  # noqa: E402
from nst_fast.transformer_net import TransformerNet  # noqa: E402

BF16 = "bf16" in cpu_precisions()
needs_bf16 = pytest.mark.skipif(not BF16, reason="this CPU reports no BF16 to OpenVINO (no AMX / AVX-512 BF16)")


@pytest.fixture(scope="module")
def transformer(tmp_path_factory):
    """A small untrained transformer and its FP32 ONNX export (its speed and numerics are those of a trained one)."""
    torch.manual_seed(0)
    graph = Graph("transformer_ov", "transformer", TransformerStylizer(TransformerNet()).eval(), {"style": "ov"})
    return graph, export_graph(graph.module, "transformer", tmp_path_factory.mktemp("ov") / "t.onnx")


def torch_output(graph, feeds):
    return validate.torch_outputs(graph.module, feeds)[0]


def test_fp32_matches_torch_within_one_level_and_the_model_cache_is_written(tmp_path, transformer):
    graph, path = transformer
    feeds = example_feeds("transformer", n=3, height=40, width=72)
    with OpenVINORunner(path, "fp32", cache_dir=tmp_path / "ovcache") as runner:
        out = runner.execute(feeds)
    assert out["stylized"].dtype == np.uint8 and out["stylized"].shape == (3, 40, 72, 3)
    assert out["finite"].dtype == bool and out["finite"].all()
    within, _, _ = validate.compare(torch_output(graph, feeds), out["stylized"])
    assert within >= validate.MIN_WITHIN_ONE
    assert any((tmp_path / "ovcache").iterdir())  # a second run loads the compiled blob instead of compiling


@needs_bf16
def test_bf16_passes_the_40_db_bar_and_splitting_the_batch_changes_nothing(transformer):
    graph, path = transformer
    feeds = example_feeds("transformer", n=4, height=48, width=64)
    with OpenVINORunner(path, "bf16") as runner:
        whole = runner.execute(feeds)["stylized"]
        one_by_one = np.concatenate([runner.execute({**feeds, "images": feeds["images"][i:i + 1]})["stylized"]
                                     for i in range(4)])
    assert validate.compare(torch_output(graph, feeds), whole)[2] >= validate.MIN_PSNR["bf16"]
    assert np.array_equal(whole, one_by_one)


def test_per_photo_style_statistics_are_split_with_their_photos(tmp_path, vgg_weights):
    """AdaIN with colour preservation feeds N x 512 statistics: each request must get its photos' rows."""
    from nst_fast.graphs import adain_graphs

    _, graph = adain_graphs()
    path = export_graph(graph.module, "adain_stylizer", tmp_path / "a.onnx")
    rng = np.random.default_rng(1)
    feeds = {"images": rng.integers(0, 256, (2, 40, 40, 3), dtype=np.uint8), "alpha": np.ones(1, np.float32),
             "style_mean": rng.uniform(0, 2, (2, 512)).astype(np.float32),
             "style_std": rng.uniform(0.5, 3, (2, 512)).astype(np.float32)}
    with OpenVINORunner(path, "fp32") as runner:
        both = runner.execute(feeds)["stylized"]
        second = runner.execute({k: v[1:] if v.shape[0] == 2 else v for k, v in feeds.items()})["stylized"]
    assert np.array_equal(both[1:], second)
    assert validate.compare(torch_output(graph, feeds), both)[0] >= validate.MIN_WITHIN_ONE


def test_an_unreadable_graph_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a graph")
    with pytest.raises(NSTError, match="bad.onnx: openvino cannot load"):
        OpenVINORunner(bad).activate()


def test_precision_options_and_what_auto_picks(monkeypatch):
    assert backends.resolve_precision("auto", True) == "fp16"
    assert backends.resolve_precision("fp32", False) == "fp32"
    with pytest.raises(NSTError, match="--fp16 contradicts --precision bf16"):
        backends.resolve_precision("bf16", True)
    monkeypatch.setattr(backends, "torch_cuda", lambda: False)
    monkeypatch.setattr(backends, "openvino_precisions", lambda: ("fp32", "bf16", "int8"))
    assert backends.choose()[0] == backends.Backend("openvino", "cpu", "bf16")
    assert backends.choose(precision="int8")[0] == backends.Backend("openvino", "cpu", "int8")
    assert backends.choose(half=False)[0] == backends.Backend("openvino", "cpu", "fp32")
    with pytest.raises(NSTError, match="onnxruntime on cpu: no bf16 here"):
        backends.choose("onnxruntime", precision="bf16")
    # a CPU without bf16: OpenVINO in FP32, and the reason says so
    monkeypatch.setattr(backends, "openvino_precisions", lambda: ("fp32", "int8"))
    picked = backends.choose()[0]
    assert picked == backends.Backend("openvino", "cpu", "fp32") and "no BF16" in backends.explain(picked)
    # no openvino: onnxruntime, as before
    monkeypatch.setattr(backends, "openvino_precisions", lambda: ())
    picked, passed_over = backends.choose("auto", "cpu")
    assert picked.kind != "openvino" and any(r.startswith("openvino on cpu: openvino") for r in passed_over)
    assert backends.Backend("torch", "cpu", True) == backends.Backend("torch", "cpu", "fp16")  # the older half flag


def test_cache_key_includes_backend_and_precision(transformer):
    graph, _ = transformer
    keys = {cache.graph_key(graph, p, b) for b in ("onnxruntime", "openvino") for p in ("fp32", "bf16")}
    assert len(keys) == 4


@needs_bf16
def test_openvino_bf16_export_is_validated_on_openvino_and_listed_by_backend(tmp_path, transformer):
    graph, _ = transformer
    plan = Plan(validate.extreme_images(32), sizes=[(32, 48)], fp16_storage=False)
    entry = export_validated(graph, "bf16", tmp_path, plan, progress=False, backend="openvino")
    assert entry["validation"]["passed"] and entry["backend"] == "openvino" and entry["file"] == "transformer_ov.fp32.onnx"
    assert {c["runtime"] for c in entry["validation"]["checks"]} == {"openvino-bf16"}
    write_manifest(tmp_path, [entry])
    assert manifest_entry(tmp_path, "transformer_ov", "bf16", "openvino")["file"] == entry["file"]
    assert manifest_entry(tmp_path, "transformer_ov", "bf16") is None  # onnxruntime has no bf16 graph here


def test_int8_graph_is_quantized_validated_and_refused_below_the_bar(tmp_path, transformer, monkeypatch):
    pytest.importorskip("nncf", reason="INT8 needs NNCF: pip install 'nst-fast[int8]'")
    graph, _ = transformer
    photos = [("noise", np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8))]
    plan = Plan(validate.extreme_images(32), sizes=[(32, 48)], fp16_storage=False)
    entry = export_validated(graph, "int8", tmp_path / "a", plan, progress=False, backend="openvino", calibration=photos)
    checks = entry["validation"]["checks"]
    assert {c["runtime"] for c in checks} == {"openvino-int8"} and all(c["finite"] for c in checks)
    assert entry["validation"]["passed"] == all(c["psnr"] >= validate.MIN_PSNR["int8"] for c in checks)
    if entry["validation"]["passed"]:
        assert {p.name for p in (tmp_path / "a").iterdir()} == {"transformer_ov.int8.xml", "transformer_ov.int8.bin"}
        assert entry["weights_sha256"]
    # a bar it cannot reach: refused, nothing left under a final name, and the cache remembers the refusal
    monkeypatch.setitem(validate.MIN_PSNR, "int8", 500.0)
    monkeypatch.setattr(cache, "sample_photos", lambda: photos)
    with pytest.raises(NSTError, match="openvino int8.*refused"):
        cache.cached_onnx(graph, "int8", tmp_path / "cache", progress=False, backend="openvino")
    (folder,) = (tmp_path / "cache").iterdir()
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json"]
    assert json.loads((folder / "manifest.json").read_text())["graphs"][0]["file"] is None
    monkeypatch.setattr(cache, "export_validated", lambda *a, **k: pytest.fail("exported again"))
    with pytest.raises(NSTError, match="refused"):
        cache.cached_onnx(graph, "int8", tmp_path / "cache", progress=False, backend="openvino")


def test_run_picks_openvino_by_default_and_checks_precision_flags(tmp_path, vgg_weights):
    save_image(np.random.default_rng(3).integers(0, 256, (40, 56, 3), dtype=np.uint8), tmp_path / "in" / "a.png")
    result = CliRunner().invoke(main, ["run", str(tmp_path / "in"), "-s", "the_scream", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "backend: openvino on the CPU" in result.output
    assert load_image(tmp_path / "out" / "a.png").shape == (40, 56, 3)
    for flags, message in [(["--fp16", "--precision", "bf16"], "--fp16 contradicts --precision bf16"),
                           (["--backend", "onnxruntime", "--precision", "int8"], "no int8 here")]:
        result = CliRunner().invoke(main, ["run", str(tmp_path / "in"), "-s", "the_scream", "-o", str(tmp_path / "x"),
                                           *flags])
        assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "x").exists()
