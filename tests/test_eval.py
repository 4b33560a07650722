"""nst-fast eval: the judges, the edge F-score, HED, a small real run of the command, and bench.compare."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from bench.compare import compare, main as compare_main
from bench.judges import ColourTexture, VGGStatistics, chi_square, edge_fscore, edge_map, grid_score, rank_of
from nst_fast.metrics import psnr

pytest.importorskip("skimage", reason="the eval judges need scikit-image (pip install 'nst-fast[eval]')")


def paintings(size: int = 96) -> list[np.ndarray]:
    """Three 'paintings' unlike each other in colour and texture."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:size, :size]
    smooth = np.stack([128 + 100 * np.sin(x / 15), 60 + 0 * x, 40 + y], -1)
    noisy = np.stack([20 + 0 * x, 60 + 0 * x, 200 + 0 * x], -1) + rng.normal(0, 40, (size, size, 3))
    stripes = np.stack([30 + 0 * x, 200 * ((x // 3) % 2), 30 + 0 * x], -1)
    return [np.clip(a, 0, 255).astype(np.uint8) for a in (smooth, noisy, stripes)]


@pytest.mark.parametrize("judge", ["vgg", "colour_texture"])
def test_each_judge_finds_the_painting_a_crop_comes_from(judge, vgg_weights):
    candidates = paintings()
    judge = VGGStatistics(vgg_weights.build("relu4_1")) if judge == "vgg" else ColourTexture()
    judge.fit(candidates)
    for i, painting in enumerate(candidates):
        crop = np.ascontiguousarray(painting[10:80, 5:90])  # another size and framing than the candidate
        distances = judge.distances(crop)
        assert rank_of(distances, i) == 1, (i, distances)
        assert distances.shape == (3,) and (distances >= 0).all()


def test_rank_counts_ties_against_the_true_candidate():
    assert rank_of(np.array([0.5, 0.2, 0.9]), 1) == 1
    assert rank_of(np.array([0.5, 0.2, 0.9]), 0) == 2
    assert rank_of(np.array([0.2, 0.2, 0.9]), 0) == 2


def test_chi_square_is_zero_for_equal_and_one_for_disjoint_histograms():
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.0, 1.0])
    assert chi_square(p, p) == 0.0
    assert chi_square(p, q) == pytest.approx(1.0)
    assert 0 < chi_square(p, np.array([0.4, 0.4, 0.2])) < 1


def test_edge_fscore_tolerates_a_pixel_and_punishes_lost_or_invented_edges():
    edges = np.zeros((200, 200), bool)
    edges[50:150, 100] = True
    assert edge_fscore(edges, edges) == 1.0
    assert edge_fscore(edges, np.roll(edges, 1, axis=1)) == 1.0  # within 0.0075 x diagonal (2.1 px)
    assert edge_fscore(edges, np.roll(edges, 20, axis=1)) == 0.0
    half = edges.copy()
    half[100:150] = False  # half the edges lost: precision 1, recall 0.5
    assert edge_fscore(edges, half) == pytest.approx(2 / 3, abs=0.02)
    assert edge_fscore(edges, np.zeros_like(edges)) == 0.0
    assert edge_fscore(np.zeros_like(edges), np.zeros_like(edges)) == 1.0


def test_grid_score_sees_a_faint_8_px_grid_and_not_a_shifted_or_aperiodic_texture():
    rng = np.random.default_rng(0)
    texture = rng.normal(128, 30, (192, 256, 3))
    lines = np.zeros((192, 256, 1))
    lines[::8], lines[:, ::8] = 8.0, 8.0  # a quarter of the texture's spread
    as_image = lambda a: np.clip(a, 0, 255).astype(np.uint8)  # noqa: E731
    plain, gridded = grid_score(as_image(texture)), grid_score(as_image(texture + lines))
    assert plain < 0.06 < 0.12 < gridded
    assert grid_score(as_image(texture + np.roll(lines, 3, axis=(0, 1)))) == pytest.approx(gridded, rel=0.1)  # any phase
    assert grid_score(as_image(texture + rng.normal(0, 8, (192, 256, 1)))) < 0.06  # as strong, but not periodic
    assert grid_score(np.full((64, 64, 3), 100, np.uint8)) == 0.0


def test_hed_finds_the_outline_of_a_square():
    from nst_fast.hed import load_hed

    image = np.full((128, 128, 3), 20, np.uint8)
    image[32:96, 32:96] = 230
    edges = edge_map(load_hed(), image)
    outline = np.zeros((128, 128), bool)
    outline[32:96, [32, 95]] = outline[[32, 95], 32:96] = True
    assert edges.sum() > 100
    assert edge_fscore(outline, edges) > 0.8
    assert not edges[48:80, 48:80].any()  # nothing inside the flat square


def test_psnr():
    a = np.zeros((4, 4, 3), np.uint8)
    assert psnr(a, a) == float("inf")
    assert psnr(a, a + 1) == pytest.approx(48.13, abs=0.01)


@pytest.mark.slow
def test_eval_command_scores_every_method_and_reuses_its_outputs(data_dir, tmp_path):
    from nst_fast.cli import main
    from nst_fast.models import save_model
    from nst_fast.transformer_net import TransformerNet

    networks = tmp_path / "networks"
    networks.mkdir()
    save_model(networks / "starry_night.safetensors", TransformerNet(), {"method": "transformer", "style": "starry_night"})
    out = tmp_path / "eval"
    args = ["eval", "--content", str(data_dir / "eval" / "content"), "--styles-dir", str(data_dir / "styles"),
            "-s", "starry_night", "-s", "the_scream", "--size", "64", "--limit", "2", "--gatys-steps", "3",
            "--transformers", str(networks), "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "eval.json").read_text())
    summary = {e["method"]: e for e in report["summary"]}
    assert set(summary) == {"photo", "gatys", "adain", "transformer"}
    assert summary["adain"]["pairs"] == 4 and summary["transformer"]["pairs"] == 2  # no network for the_scream
    assert summary["photo"]["edge_f"] == 1.0 and all(0 <= e["grid"] < 1 for e in summary.values())
    assert summary["adain"]["candidates"] == len(report["candidates"]) >= 5
    for method in ("adain", "transformer"):
        assert summary[method]["style_loss_vs_gatys"] > 0 and summary[method]["content_loss_vs_gatys"] > 0
        assert 0 <= summary[method]["top1_vgg"] <= 1 and 0 <= summary[method]["edge_f"] < 1
    measured = [r for r in report["fidelity"] if "skipped" not in r]
    assert {(r["method"], r["precision"]) for r in measured} >= {("adain", "fp32"), ("adain", "fp16")}
    assert all(r["psnr_min"] is None or r["psnr_min"] > 40 for r in measured)  # None: identical (inf)
    for method in ("gatys", "adain", "transformer"):
        assert (out / f"sheet-{method}.jpg").is_file()

    # Gatys taken from the report instead of run again: same ratios, no Gatys outputs computed
    again = tmp_path / "again"
    result = CliRunner().invoke(main, args[:-1] + [str(again), "--gatys-from", str(out / "eval.json"), "--no-fidelity"])
    assert result.exit_code == 0, result.output
    assert not (again / "outputs" / "gatys").exists() and "not run again" in (again / "eval.md").read_text()
    reused = {e["method"]: e for e in json.loads((again / "eval.json").read_text())["summary"]}
    for method in ("gatys", "adain", "transformer"):
        losses = [k for k in summary[method] if "loss" in k]
        assert {k: reused[method][k] for k in losses} == pytest.approx({k: summary[method][k] for k in losses}, rel=1e-5)
    other_size = [a if a != "64" else "72" for a in args[:-1]] + [str(again), "--gatys-from", str(out / "eval.json")]
    result = CliRunner().invoke(main, other_size)
    assert result.exit_code == 2 and "eval.json: recorded with size 64, this run uses 72" in result.output

    gatys_output = out / "outputs" / "gatys" / "starry_night" / f"{report['photos'][0]}.png"
    before = gatys_output.stat().st_mtime_ns
    assert CliRunner().invoke(main, args + ["-m", "gatys", "--no-fidelity"]).exit_code == 0
    assert gatys_output.stat().st_mtime_ns == before  # reused, not recomputed
    changed = [a if a != "3" else "4" for a in args]  # another step budget: stale, recomputed
    assert CliRunner().invoke(main, changed + ["-m", "gatys", "--no-fidelity"]).exit_code == 0
    assert gatys_output.stat().st_mtime_ns != before


def test_eval_names_a_missing_style(data_dir, tmp_path):
    from nst_fast.cli import main

    result = CliRunner().invoke(main, ["eval", "--content", str(data_dir / "eval" / "content"), "--styles-dir",
                                       str(data_dir / "styles"), "-s", "no_such_painting", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "no_such_painting" in result.output


def _row(method, style, photo, style_loss, rank_vgg=1, content_loss=1.0):
    return {"method": method, "style": style, "photo": photo, "style_loss": style_loss, "content_loss": content_loss,
            "rank_vgg": rank_vgg, "rank_colour_texture": 1, "edge_f": 0.5, "grid": 0.04, "seconds": None}


def test_compare_pairs_each_photo_with_itself(tmp_path):
    a = {"rows": [_row("adain", "wave", p, 10.0, rank_vgg=2) for p in "xyz"] + [_row("adain", "night", "x", 4.0),
                                                                                 _row("gatys", "wave", "x", 1.0)]}
    b = {"rows": [_row("adain", "wave", "x", 5.0), _row("adain", "wave", "y", 20.0), _row("adain", "wave", "z", 8.0),
                  _row("adain", "night", "x", 4.0), _row("adain", "night", "only-in-b", 1.0)]}
    by_style = {e["style"]: e for e in compare(a, b)}
    wave = by_style["wave"]
    assert (wave["pairs"], wave["b_lower_style_loss"]) == (3, 2)
    assert wave["style_loss_b_over_a"] == pytest.approx(0.8)  # median of 0.5, 2.0, 0.8
    assert (wave["top1_vgg_a"], wave["top1_vgg_b"]) == (0.0, 1.0)
    assert by_style["night"]["pairs"] == 1 and by_style["all"]["pairs"] == 4  # the pair only B has is left out
    for name, report in (("a.json", a), ("b.json", b)):
        (tmp_path / name).write_text(json.dumps(report))
    assert compare_main([str(tmp_path / "a.json"), str(tmp_path / "b.json"), "-o", str(tmp_path / "c.md")]) == 0
    assert "| wave | 3 | 0.800 | 2 |" in (tmp_path / "c.md").read_text()
    with pytest.raises(SystemExit, match="share no"):
        compare_main([str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--method", "transformer"])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(SystemExit, match="bad.json: not an `nst-fast eval` report"):
        compare_main([str(tmp_path / "bad.json"), str(tmp_path / "b.json")])
