"""The batch runner: tiling of large images (seams, tone), per-item failures, the JSON report, dry
runs, --verbose and --keep-exif, and bad inputs that must each fail alone with path and reason.

Stand-in runners keep most tests fast; AdaIN with the bundled weights checks the seams."""
from __future__ import annotations

import json
import os
import re
import struct
import zlib

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image, ImageCms, ImageDraw, ImageFilter

from nst_fast import batch
from nst_fast.adain import adain, mean_std, moments, statistics_for_tile
from nst_fast.cli import main
from nst_fast.runners.base import Runner
from nst_fast.tiling import MIN_TILE, Grid, spans, tile_starts


class Identity(Runner):
    """Returns its input, so a tiled image must come back unchanged. Records each batch's shape."""

    name = "identity"

    def __init__(self):
        super().__init__()
        self.shapes = []

    def execute(self, feeds):
        self.shapes.append(feeds["images"].shape)
        return {"stylized": feeds["images"].copy()}


class NaNOnBlack(Identity):
    """Says an all-black image came out as NaN, as an FP16 overflow would."""

    def execute(self, feeds):
        images = feeds["images"]
        return {**super().execute(feeds), "finite": images.reshape(len(images), -1).max(axis=1) > 0}


class OutOfMemory(Identity):
    """Runs out of memory on any batch of more than one, and on an all-white image even alone."""

    def execute(self, feeds):
        images = feeds["images"]
        if len(images) > 1 or (images == 255).all():
            raise RuntimeError("CUDA out of memory (stand-in)")
        return super().execute(feeds)


def photo_like(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth colour gradients with soft-edged shapes: a synthetic stand-in for a photo."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([120 + 100 * x, 80 + 120 * y, 200 - 120 * x * y], -1)
    image = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw, rng = ImageDraw.Draw(image), np.random.default_rng(seed)
    for _ in range(12):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.03, 0.15) * max(h, w)
        draw.ellipse([cx - r, cy - 0.7 * r, cx + r, cy + 0.7 * r], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return np.asarray(image.filter(ImageFilter.GaussianBlur(max(h, w) / 400)))


def save(array: np.ndarray, path, **options):
    Image.fromarray(array).save(path, **options)
    return path


def stylise(paths, out, runner=None, **options) -> batch.Summary:
    jobs = batch.plan(list(paths), out)
    return batch.run(jobs, runner or Identity(), progress=False, **options)


def job(summary: batch.Summary, name: str) -> batch.Job:
    return next(j for j in summary.jobs if j.src.name == name)


# --- tiling ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [16, 1024, 1032, 2008, 4000, 5000, 6000])
def test_tiles_cover_overlap_and_weights_sum_to_one(length):
    tile, overlap = 1024, 128
    starts = tile_starts(length, tile, overlap)
    size = min(tile, length)
    assert starts[0] == 0 and starts[-1] + size == length and all(s % 8 == 0 for s in starts)
    assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))  # neighbours share >= overlap
    total = np.zeros(length)
    for span in spans(length, tile, overlap):
        total[span.start:span.stop] += span.weights
        if span.start > 0:  # the network's unreliable edge pixels do not count where a neighbour has them
            assert (span.weights[:overlap // 4] == 0).all()
    np.testing.assert_allclose(total, 1, atol=1e-6)


@pytest.mark.parametrize("shape, tile, batch_size", [((16, 5000), 1024, 4), ((1040, 2000), 1024, 3),
                                                     ((304, 600), MIN_TILE, 2)])
def test_tiles_blend_back_exactly(shape, tile, batch_size):
    image = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    runner = Identity()
    out, count = batch.stylize_tiled(runner, image, tile, batch_size)
    np.testing.assert_array_equal(out, image)
    assert count == len(Grid(*shape, tile)) > 1
    assert sum(s[0] for s in runner.shapes) == count
    assert all(s[0] <= batch_size and max(s[1:3]) <= tile for s in runner.shapes)


@pytest.mark.slow
def test_6000x4000_image_is_tiled_and_written_at_full_size(tmp_path):
    src = save(np.asarray(Image.fromarray(photo_like(400, 600)).resize((6000, 4000), Image.BILINEAR)),
               tmp_path / "big.png", compress_level=1)  # an upscaled photo-like image
    runner = Identity()
    summary = stylise([src], tmp_path / "out", runner, max_size=None)
    big = job(summary, "big.png")
    assert big.status == "done", big.error
    tiles = len(Grid(4000, 6000, batch.TILE_SIZE))
    assert big.note == f"{tiles} tiles" and tiles == 35
    assert max(max(s[1:3]) for s in runner.shapes) == batch.TILE_SIZE
    with Image.open(big.dst) as out:
        assert out.size == (6000, 4000)
        np.testing.assert_array_equal(np.asarray(out), np.asarray(Image.open(src)))


def test_tile_statistics_equal_whole_image_normalisation():
    torch.manual_seed(0)
    image = torch.randn(1, 6, 12, 20) * 3 + 2
    tiles = [image[..., :, :8], image[..., :, 8:]]
    whole = mean_std(image)
    ones = lambda t: torch.ones(1, 1, *t.shape[2:])  # noqa: E731 (one region: all of it)
    first, second = (moments(t, ones(t)) for t in tiles)
    pooled = (first + second).statistics()
    for a, b in zip(pooled, whole):
        torch.testing.assert_close(a.reshape(b.shape), b, atol=1e-5, rtol=1e-5)
    style = (torch.randn(1, 6, 1, 1), torch.rand(1, 6, 1, 1) + 0.5)
    for tile in tiles:  # adain() normalises by the tile's own statistics; the style inputs undo that
        got = adain(tile, *statistics_for_tile(*style, *mean_std(tile), *whole))
        wanted = (tile - whole[0]) / whole[1] * style[1] + style[0]
        torch.testing.assert_close(got, wanted, atol=1e-4, rtol=1e-4)


@pytest.fixture
def photo(request) -> np.ndarray:
    """A real photo at 640 x 416 where the shared data is at hand, else a synthetic one."""
    try:
        folder = request.getfixturevalue("data_dir")
    except pytest.skip.Exception:
        return photo_like(416, 640)
    with Image.open(folder / "photos" / "newyork.jpg") as im:
        return np.array(im.convert("RGB").resize((640, 416), Image.LANCZOS))


def step_energy(image: np.ndarray, axis: int) -> np.ndarray:
    """Mean absolute step between neighbouring columns (axis 1) or rows (axis 0)."""
    return np.abs(np.diff(image.astype(np.float32), axis=axis)).mean(axis=(2, 1 - axis))


def seam_ratio(image, reference, edges, axis) -> float:
    """Step energy at tile edges over that of the interior, each relative to an untiled run (so the
    photo's own edges do not count): about 1 when no grid shows."""
    ratio = step_energy(image, axis) / (step_energy(reference, axis) + 1.0)
    at_edge = np.zeros(len(ratio), bool)
    at_edge[[e - 1 for e in edges]] = True
    return float(ratio[at_edge].mean() / np.median(ratio[~at_edge]))


@pytest.mark.slow
def test_adain_tiles_are_seamless_and_match_in_tone(photo, vgg_weights):
    """A 6000 x 4000 photo in 1024 px tiles, scaled down ~9x (tiles of 256 with the same 128 px
    overlap, since the network's edge error is as wide at any scale), which is also the smallest
    tile allowed: no grid, and the tiles keep the tone of an untiled run, which per-tile
    statistics do not."""
    from nst_fast.methods import Delegate, adain_runner

    h, w, tile = *photo.shape[:2], MIN_TILE
    grid = Grid(h, w, tile)
    with adain_runner(["starry_night"]) as runner:
        whole = runner.infer(photo[None])[0]
        tiled, count = batch.stylize_tiled(runner, photo, tile, 4)
        own_statistics, _ = batch.stylize_tiled(Delegate(runner), photo, tile, 4)  # no for_tiles
        cut = np.zeros_like(photo)  # the naive way: abutting tiles, each with its own statistics
        for y in range(0, h, tile):
            for x in range(0, w, tile):
                cut[y:y + tile, x:x + tile] = runner.infer(np.ascontiguousarray(photo[y:y + tile, x:x + tile])[None])[0]
    assert count == 12
    for axis, length in enumerate((h, w)):
        along = [box[axis] for box in grid.boxes]
        edges = sorted({s.start for s in along if s.start > 0} | {s.stop for s in along if s.stop < length})
        assert seam_ratio(tiled, whole, edges, axis) < 1.3
        assert seam_ratio(cut, whole, list(range(tile, length, tile)), axis) > 2  # the measure sees a grid

    def tone_spread(image):  # how much tiles' mean colours drift from the untiled run's, across tiles
        drift = [(image[r.start:r.stop, c.start:c.stop].astype(float) - whole[r.start:r.stop, c.start:c.stop])
                 .mean(axis=(0, 1)) for r, c in grid.boxes]
        return float(np.std(drift, axis=0).max())

    assert tone_spread(tiled) < 0.5 * tone_spread(own_statistics)
    assert np.abs(tiled.astype(int) - whole).mean() < 0.6 * np.abs(own_statistics.astype(int) - whole).mean()


# --- batching --------------------------------------------------------------------------------------


class Slow(Identity):
    """Takes 0.2 s a batch, as an engine does."""

    def execute(self, feeds):
        import time

        time.sleep(0.2)
        return super().execute(feeds)


@pytest.mark.parametrize("flush_after, odd_runs_last", [(0.1, False), (1e9, True)])
def test_a_lone_odd_sized_image_runs_after_the_flush_timeout_not_at_the_end(tmp_path, flush_after, odd_runs_last):
    (tmp_path / "in").mkdir()
    save(photo_like(40, 72), tmp_path / "in" / "a_odd.png")
    for i in range(12):
        save(photo_like(40, 48, i), tmp_path / "in" / f"b{i:02d}.png")
    runner = Slow()
    summary = stylise([tmp_path / "in"], tmp_path / "out", runner, batch_size=4, flush_after=flush_after)
    assert summary.count("done") == 13
    odd = [i for i, shape in enumerate(runner.shapes) if shape[1:3] == (40, 72)]
    assert odd and runner.shapes[odd[0]][0] == 1
    assert (odd[0] == len(runner.shapes) - 1) == odd_runs_last, runner.shapes
    assert sorted(s[0] for s in runner.shapes if s[1:3] == (40, 48)) == [4, 4, 4]  # the others stay full batches


# --- per-item failures ------------------------------------------------------------------------------


def test_non_finite_output_fails_only_its_file(tmp_path):
    rng = np.random.default_rng(1)
    names = ["a.png", "b.png", "c.png", "d.png"]
    for name in names:
        save(rng.integers(1, 256, (16, 24, 3), dtype=np.uint8), tmp_path / name)
    save(np.zeros((16, 24, 3), np.uint8), tmp_path / "b.png")
    runner = NaNOnBlack()
    summary = stylise([tmp_path], tmp_path / "out", runner, batch_size=4)
    bad = job(summary, "b.png")
    assert bad.status == "failed" and bad.error.startswith(f"{tmp_path / 'b.png'}: ") and "NaN or inf" in bad.error
    assert [job(summary, n).status for n in names if n != "b.png"] == ["done"] * 3
    assert [s[0] for s in runner.shapes] == [4, 1, 1, 1]  # the batch, then the others one by one


def test_out_of_memory_retries_one_at_a_time(tmp_path, capsys):
    rng = np.random.default_rng(2)
    for name in ["a.png", "b.png", "c.png"]:
        save(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8), tmp_path / name)
    save(np.full((16, 16, 3), 255, np.uint8), tmp_path / "white.png")
    save(rng.integers(0, 255, (40, 600, 3), dtype=np.uint8), tmp_path / "wide.png")  # 4 tiles of 256
    summary = stylise([tmp_path], tmp_path / "out", OutOfMemory(), batch_size=4, tile_size=MIN_TILE)
    assert summary.count("done") == 4 and summary.count("failed") == 1
    white = job(summary, "white.png")
    assert white.error == f"{tmp_path / 'white.png'}: stylisation failed (RuntimeError: CUDA out of memory (stand-in))"
    assert white.error in capsys.readouterr().err
    np.testing.assert_array_equal(np.asarray(Image.open(job(summary, "wide.png").dst)),
                                  np.asarray(Image.open(tmp_path / "wide.png")))


# --- report, dry run, verbose, EXIF ------------------------------------------------------------------


def test_report_lists_every_file_with_status_size_time_and_error(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    save(photo_like(20, 30), src / "a.png")
    save(photo_like(20, 30), src / "b.png")
    (src / "c.jpg").write_bytes(b"not a jpeg")
    stylise([src], out)
    (out / "a.png").unlink()
    summary = stylise([src], out)  # a again, b skipped, c fails again
    batch.write_report(summary, tmp_path / "report.json")
    report = json.loads((tmp_path / "report.json").read_text())
    files = {os.path.basename(f["input"]): f for f in report["files"]}
    assert [os.path.basename(f["input"]) for f in report["files"]] == ["a.png", "b.png", "c.jpg"]
    assert {n: f["status"] for n, f in files.items()} == {"a.png": "done", "b.png": "skipped", "c.jpg": "failed"}
    assert files["a.png"]["bytes"] == (src / "a.png").stat().st_size and files["a.png"]["seconds"] > 0
    assert files["a.png"]["output"] == str(out / "a.png") and files["a.png"]["error"] == ""
    assert files["c.jpg"]["error"] == f"{src / 'c.jpg'}: not an image Pillow can read"
    assert report["summary"]["done"] == 1 and report["summary"]["failed"] == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


@pytest.fixture
def transformer_file(tmp_path_factory, vgg_weights):
    """A random transformer network: the cheapest real model for end-to-end runs of the command."""
    from nst_fast.models import save_model
    from nst_fast.transformer_net import TransformerNet

    path = tmp_path_factory.mktemp("models") / "net.safetensors"
    torch.manual_seed(0)
    save_model(path, TransformerNet(), {"method": "transformer", "encoder_id": vgg_weights.encoder_id})
    return path


def invoke(*args):
    return CliRunner().invoke(main, ["run", "-m", "transformer", "-s", "any", "--backend", "torch", *map(str, args)])


def test_command_with_report_verbose_tiles_and_first_frames(tmp_path, transformer_file):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    save(photo_like(40, 600), src / "wide.jpg")
    frames = [Image.fromarray(photo_like(24, 32, seed)) for seed in range(3)]
    frames[0].save(src / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    (src / "empty.png").write_bytes(b"")
    result = invoke(src, "--model", transformer_file, "--tile-size", 256, "--verbose", "--report",
                    tmp_path / "r.json", "-o", out)
    assert result.exit_code == 1, result.output  # one file failed
    lines = result.output.splitlines()
    assert f"done: {src / 'anim.gif'} -> {out / 'anim.png'}" in next(l for l in lines if "anim" in l)
    assert "GIF with 3 frames: the first one used" in next(l for l in lines if "anim" in l)
    assert next(l for l in lines if "wide" in l).endswith(f"; {len(Grid(40, 600, 256))} tiles)")
    assert f"error: {src / 'empty.png'}: empty file" in lines
    report = json.loads((tmp_path / "r.json").read_text())
    assert [f["status"] for f in report["files"]] == ["done", "failed", "done"]
    assert Image.open(out / "wide.jpg").size == (600, 40)


def test_dry_run_lists_and_writes_nothing(tmp_path, transformer_file):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    save(photo_like(20, 30), src / "a.png")
    save(photo_like(20, 30), src / "b.png")
    save(photo_like(20, 30), out / "b.png")
    (src / "c.jpg").write_bytes(b"")
    # a style that does not exist is refused up front, as the real run would be
    assert invoke(src, "--dry-run", "-o", out).exit_code == 2
    result = invoke(src, "--dry-run", "--model", transformer_file, "--report", tmp_path / "r.json", "-o", out)
    assert result.exit_code == 1, result.output
    assert f"would stylise: {src / 'a.png'} -> {out / 'a.png'}" in result.output
    assert f"would skip: {src / 'b.png'} ({out / 'b.png'} exists)" in result.output
    assert f"would fail: {src / 'c.jpg'}: empty file" in result.output
    assert "dry run: 1 to stylise, 1 to skip, 1 would fail; nothing written" in result.output
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.png", "b.png", "b.png", "c.jpg", "in", "out"]


def test_contradicting_or_bad_options_are_usage_errors(tmp_path):
    save(photo_like(16, 16), tmp_path / "a.png")
    assert invoke(tmp_path / "a.png", "--quiet", "--verbose").exit_code == 2
    result = invoke(tmp_path / "a.png", "--tile-size", 10)
    assert result.exit_code == 2 and "--tile-size" in result.output


def test_keep_exif_carries_metadata_with_upright_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 30 x 20, shown rotated: 20 x 30
    exif[0x010F] = "Nikon"
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = save(photo_like(20, 30), tmp_path / "p.jpg", exif=exif, icc_profile=srgb)
    for keep in (True, False):
        summary = stylise([src], tmp_path / str(keep), keep_exif=keep)
        with Image.open(job(summary, "p.jpg").dst) as out:
            assert out.size == (20, 30)
            assert dict(out.getexif()) == ({0x0112: 1, 0x010F: "Nikon"} if keep else {})
            assert out.info.get("icc_profile") == (srgb if keep else None)


# --- bad inputs: each fails (or succeeds) alone, with its path and reason; the run goes on ----------


def broken_symlink(folder):
    (folder / "gone.jpg").symlink_to(folder / "missing.jpg")
    return "gone.jpg", f"broken symbolic link \\(to {re.escape(str(folder / 'missing.jpg'))}\\)"


def symlink_loop(folder):
    (folder / "loop.jpg").symlink_to(folder / "loop.jpg")
    return "loop.jpg", "symbolic link loop"


def zero_bytes(folder):
    (folder / "zero.jpg").write_bytes(b"")
    return "zero.jpg", "empty file"


def truncated(folder):
    whole = save(np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8), folder / "w.tmp", format="PNG")
    (folder / "cut.png").write_bytes(whole.read_bytes()[:whole.stat().st_size // 2])
    whole.unlink()
    return "cut.png", "truncated image"


def decompression_bomb(folder):
    """A 100000 x 100000 PNG header: 10 G pixels declared in 45 bytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0))
    (folder / "bomb.png").write_bytes(b"\x89PNG\r\n\x1a\n" + header + chunk(b"IEND", b""))
    return "bomb.png", f"image has 10000000000 pixels, above the limit of {Image.MAX_IMAGE_PIXELS}"


def not_an_image(folder):
    (folder / "notes.png").write_text("a shopping list\n")
    return "notes.png", "not an image Pillow can read"


@pytest.mark.parametrize("make", [broken_symlink, symlink_loop, zero_bytes, truncated, decompression_bomb,
                                  not_an_image], ids=lambda f: f.__name__)
def test_bad_input_fails_alone_with_path_and_reason(tmp_path, make, capsys):
    src = tmp_path / "in"
    src.mkdir()
    save(photo_like(16, 16), src / "good.png")
    name, reason = make(src)
    summary = stylise([src], tmp_path / "out")
    bad = job(summary, name)
    assert bad.status == "failed" and re.fullmatch(f"{re.escape(str(src / name))}: {reason}.*", bad.error), bad.error
    assert f"error: {bad.error}" in capsys.readouterr().err
    assert job(summary, "good.png").status == "done"


def test_unreadable_file(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("running as root, which reads files whatever their permissions")
    save(photo_like(16, 16), tmp_path / "secret.png").chmod(0)
    save(photo_like(16, 16), tmp_path / "good.png")
    summary = stylise([tmp_path], tmp_path / "out")
    assert job(summary, "secret.png").error == f"{tmp_path / 'secret.png'}: permission denied"
    assert job(summary, "good.png").status == "done"


def test_non_utf8_file_name(tmp_path, capsys):
    name = os.fsdecode(b"caf\xe9.png")  # Latin-1 bytes: not UTF-8, so Python holds a surrogate
    save(photo_like(16, 16), tmp_path / name)
    (tmp_path / os.fsdecode(b"\xff.jpg")).write_bytes(b"")
    summary = stylise([tmp_path], tmp_path / "out", verbose=True)
    assert job(summary, name).status == "done" and (tmp_path / "out" / name).is_file()
    assert "caf\\xe9.png" in capsys.readouterr().out  # printable, bytes shown as \xNN
    assert job(summary, os.fsdecode(b"\xff.jpg")).error == f"{batch.printable(str(tmp_path))}/\\xff.jpg: empty file"
    batch.write_report(summary, tmp_path / "r.json")
    report = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert {os.path.basename(f["input"]) for f in report["files"]} == {"caf\\xe9.png", "\\xff.jpg"}


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animated_image_uses_its_first_frame_and_says_so(tmp_path, fmt):
    frames = [Image.new("RGB", (16, 16), colour) for colour in ("red", "blue", "lime")]
    path = tmp_path / f"anim.{fmt.lower()}"
    frames[0].save(path, format=fmt, save_all=True, append_images=frames[1:], duration=50, lossless=True)
    anim = job(stylise([path], tmp_path / "out"), path.name)
    assert anim.status == "done" and anim.note == f"{fmt} with 3 frames: the first one used"
    assert np.abs(np.asarray(Image.open(anim.dst), dtype=int) - (255, 0, 0)).max() < 10  # WebP out is lossy


def test_one_pixel_and_one_by_5000_images(tmp_path):
    rng = np.random.default_rng(4)
    images = {"dot.png": rng.integers(0, 256, (1, 1, 3), dtype=np.uint8),
              "line.png": rng.integers(0, 256, (5000, 1, 3), dtype=np.uint8)}
    for name, image in images.items():
        save(image, tmp_path / name)
    summary = stylise([tmp_path], tmp_path / "out", max_size=None)
    for name, image in images.items():
        assert job(summary, name).status == "done"
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / name)), image)
    assert job(summary, "line.png").note == f"{len(Grid(5000, 16, batch.TILE_SIZE))} tiles"


def test_a_rerun_removes_partial_files_a_killed_run_left(tmp_path):
    import subprocess
    import sys

    from nst_fast.fileio import atomic_path, remove_stale_parts

    # a writer that dies mid-write (as under kill -9) leaves its partial file behind
    code = ("import os, sys; from nst_fast.fileio import atomic_path\n"
            "with atomic_path(sys.argv[1]) as tmp:\n    tmp.write_bytes(b'half')\n    os._exit(0)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.jpg")], check=True)
    with atomic_path(tmp_path / "b.jpg") as ours:  # a live writer: this process
        ours.write_bytes(b"being written")
        (left,) = [p for p in tmp_path.glob(".a.*.part")]
        assert remove_stale_parts(tmp_path) == [left] and not left.exists() and ours.exists()
    assert (tmp_path / "b.jpg").read_bytes() == b"being written" and not (tmp_path / "a.jpg").exists()
