"""The benchmark harness: FLOP counts, and a quick end-to-end run of `nst-fast bench`."""
import json

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from bench.flops import conv_flops
from bench.harness import speedups
from nst_fast.cli import main


def test_conv_flops_count_every_multiply_add():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 1, stride=2))
    # 2 * (3*3*3) * 8 outputs per pixel * 100 pixels, then 2 * 8 * 4 * 25
    assert conv_flops(net, torch.zeros(1, 3, 10, 10)) == 2 * 27 * 8 * 100 + 2 * 8 * 4 * 25


def test_network_flops_grow_with_pixels(vgg_weights):
    from nst_fast.graphs import adain_graphs

    module = adain_graphs()[1].module
    style = (torch.zeros(1, 512), torch.ones(1, 512), torch.ones(1))
    small = conv_flops(module, torch.zeros(1, 256, 256, 3, dtype=torch.uint8), *style)
    large = conv_flops(module, torch.zeros(1, 512, 512, 3, dtype=torch.uint8), *style)
    # in proportion to the pixels encoded and decoded, the mirrored margin (adain.MARGIN) included
    assert large == pytest.approx(small * (512 + 64) ** 2 / (256 + 64) ** 2, rel=1e-9)
    assert 260e9 < large < 280e9  # ~271 GFLOP for AdaIN at 512 px (214 without the margin)
    assert next(module.parameters()).device.type == "cpu"  # counted on a copy


def test_speedups_are_ratios_within_one_run():
    results = [{"config": {"method": "gatys", "size": 256}, "images_per_s": 0.01},
               {"config": {"method": "adain", "size": 256}, "images_per_s": 5.0},
               {"config": {"method": "adain", "size": 512}, "images_per_s": 1.0},
               {"config": {"method": "adain", "size": 256}, "error": "x"}]
    speedups(results)
    assert results[1]["speedup_vs_gatys"] == pytest.approx(500)
    assert "speedup_vs_gatys" not in results[2] and "speedup_vs_gatys" not in results[3]


@pytest.mark.slow
def test_quick_bench_writes_json_table_and_plot(tmp_path, vgg_weights):
    # two backends: the harness is the same for all, and OpenVINO's precisions (INT8 quantising alone
    # takes 20 s) are timed in tests/test_openvino.py
    result = CliRunner().invoke(main, ["bench", "--quick", "-m", "gatys", "-m", "adain", "--runner-images", "4",
                                       "--backend", "onnxruntime", "--backend", "torch", "--label", "test",
                                       "-o", str(tmp_path)])
    assert result.exit_code == 0, (result.output, result.exception)
    (report,) = tmp_path.glob("*-test-*.json")
    data = json.loads(report.read_text())
    assert all("error" not in r for r in data["results"]), data["results"]
    methods = [(r["config"]["method"], r["config"]["backend"]) for r in data["results"]]
    assert methods[0] == ("gatys", "torch") and set(methods[1:]) == {("adain", "onnxruntime"), ("adain", "torch")}
    adain = [r for r in data["results"] if r["config"]["method"] == "adain" and "error" not in r]
    assert all(r["images_per_s"] > 0 and r["speedup_vs_gatys"] > 1 for r in adain)
    assert adain[0]["runner"]["done"] == 4  # the default backend, end to end through files
    assert data["environment"]["versions"]["torch"] == torch.__version__
    assert report.with_suffix(".png").stat().st_size > 1000
    assert "| adain" in report.with_suffix(".md").read_text()
