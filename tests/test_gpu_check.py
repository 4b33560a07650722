"""The GPU pack (`make gpu-pack`) and the GPU check's dry run (bench/gpu_check.sh --dry-run), so the
prepared GPU call cannot rot between GPU windows; and the FP16 VGG pack against the .h5 it came from."""
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench import gpu_pack
from nst_fast.errors import WeightsError
from nst_fast.graphs import TRANSFORMERS, bundled_transformers
from nst_fast.models import load_decoder, load_transformer, read_weights
from nst_fast.styles import PRESETS, load_preset, preset_names
from nst_fast.weights import load_vgg_weights, write_pack

ROOT = Path(__file__).resolve().parents[1]


def synthetic_data(root: Path) -> Path:
    """A data set of the shared one's layout, of small smooth random images (no ../shared/data needed)."""
    rng = np.random.default_rng(0)
    folders = {"train/content": 6, "train/style": 6, "photos": 2, "eval/content": 2}
    for folder, count in folders.items():
        (root / folder).mkdir(parents=True)
        for i in range(count):
            smooth = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
            Image.fromarray(smooth).resize((96, 72), Image.BICUBIC).save(root / folder / f"{i}.jpg")
    Image.fromarray(np.zeros((72, 96), np.uint8)).save(root / "train" / "content" / "grey.jpg")  # left out
    (root / "styles").mkdir()
    for name in bundled_transformers():
        smooth = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        Image.fromarray(smooth).resize((128, 96), Image.BICUBIC).save(root / "styles" / f"{name}.jpg")
    return root


@pytest.fixture(scope="module")
def pack(tmp_path_factory, vgg_weights):
    root = tmp_path_factory.mktemp("gpu")
    result = gpu_pack.build(synthetic_data(root / "data"), root / "pack", None, contents=4, styles=3, side=64,
                            quality=85)
    return root / "pack", result


def test_pack_holds_fp16_vgg_under_the_h5_encoder_id_and_the_training_images(pack, vgg_weights):
    folder, result = pack
    assert sorted(p.name for p in folder.iterdir()) == ["pack.json", "photos", "styles", "train.tar",
                                                        "vgg16.safetensors"]
    state, meta = read_weights(folder / "vgg16.safetensors")  # read as FP32; stored as FP16
    assert meta["encoder_id"] == vgg_weights.encoder_id and meta["last"] == "conv4_1"
    assert sorted({k.split(".")[0] for k in state}) == sorted(["conv1_1", "conv1_2", "conv2_1", "conv2_2",
                                                               "conv3_1", "conv3_2", "conv3_3", "conv4_1"])
    assert (folder / "vgg16.safetensors").stat().st_size < 6 * 2 ** 20  # FP16, trimmed: the 64 MiB carry
    with tarfile.open(folder / "train.tar") as tar:
        names = tar.getnames()
    assert sum(n.startswith("content/") for n in names) == 4 and sum(n.startswith("style/") for n in names) == 3
    assert "content/grey.jpg" not in names  # greyscale photos are left out, as the trainer would
    assert json.loads((folder / "pack.json").read_text())["encoder_id"] == vgg_weights.encoder_id
    assert result["mib"] < gpu_pack.MAX_MIB and not list(folder.parent.glob("pack.part"))


def test_pack_file_loads_as_vgg_weights_and_refuses_deeper_layers(pack, tmp_path):
    folder, _ = pack
    weights = load_vgg_weights(folder / "vgg16.safetensors")
    assert weights.build("relu4_1") is not None
    with pytest.raises(WeightsError, match=r"vgg16\.safetensors: holds no conv4_2, conv4_3, which relu4_3 needs"):
        weights.build("relu4_3")
    other = tmp_path / "other.safetensors"
    from safetensors.torch import save_file
    save_file({"x": torch.zeros(1)}, str(other))
    with pytest.raises(WeightsError, match=r"other\.safetensors: not a VGG pack of nst-fast"):
        load_vgg_weights(other)


def test_shipped_weights_load_against_the_fp16_pack_and_change_within_bounds(vgg_weights, data_dir, tmp_path):
    """FP16 rounding keeps the encoder id check and the results: the shipped decoder, presets and
    transformer networks load against the pack; on real photos AdaIN's outputs stay >= 40 dB from
    those of the FP32 weights and every tap's features within 1 % (measured: 61 dB, 4e-4)."""
    pack = load_vgg_weights(write_pack(vgg_weights, tmp_path / "vgg16.safetensors", "conv5_1"))
    load_decoder(None, pack.encoder_id)
    for name in preset_names():
        load_preset(PRESETS / f"{name}.safetensors", pack.encoder_id)
    for style in bundled_transformers():
        load_transformer(TRANSFORMERS / f"{style}.safetensors", pack.encoder_id)
    from nst_fast.images import image_files, load_image
    photos = [load_image(p, 128) for p in image_files(data_dir / "eval" / "content")[:2]]
    photos = [p[: p.shape[0] // 8 * 8, : p.shape[1] // 8 * 8].copy() for p in photos]
    paintings = [load_image(data_dir / "styles" / "starry_night.jpg", 128)]
    effect = gpu_pack.fp16_effect(vgg_weights, pack, photos, paintings)
    assert effect["adain_psnr_min_db"] >= gpu_pack.MIN_ADAIN_PSNR
    assert max(effect["feature_relative_error"].values()) <= gpu_pack.MAX_FEATURE_ERROR
    assert set(effect["feature_relative_error"]) == set(gpu_pack.TAPS)  # Gatys' and the transformers' too


def test_pack_refuses_a_missing_data_set(tmp_path, vgg_weights):
    from nst_fast.errors import NSTError
    with pytest.raises(NSTError, match=r"train/content: not found: --data must be the shared data set"):
        gpu_pack.build(tmp_path, tmp_path / "pack", None, 1, 1, 64, 85)


def test_dry_run_runs_every_stage_and_brings_back_at_most_8_files(pack, tmp_path, vgg_weights):
    folder, _ = pack
    out = tmp_path / "out"
    env = {**os.environ, "PACK": str(folder), "OUT": str(out), "PYTHON": sys.executable}
    proc = subprocess.run(["bash", "bench/gpu_check.sh", "--dry-run"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    log = (out / "gpu_check.log").read_text() if (out / "gpu_check.log").exists() else proc.stderr
    assert proc.returncode == 0, log[-3000:]
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted(["summary.md", "gpu_check.log", "pytest-gpu.log", "adain.tar", "transformers.tar",
                            "bench.tar", "fidelity.md", "fidelity.json"])
    summary = (out / "summary.md").read_text()
    rows = [line for line in summary.splitlines() if line.startswith("| ") and line.count("|") == 5]
    assert [r.split("|")[4].strip() for r in rows[1:]] == \
        ["skipped: dry run: this venv has the project and its wheels", "ok", "ok", "ok", "ok"]

    with tarfile.open(out / "adain.tar") as tar:
        tar.extractall(tmp_path / "back", filter="data")
    training = json.loads((tmp_path / "back" / "training.json").read_text())
    assert training["runs"]["adain"]["steps"] >= 1 and training["settings"]["vgg"].endswith("vgg16.safetensors")
    decoder_file = tmp_path / "back" / "adain" / "adain_decoder.safetensors"
    _, meta = load_decoder(decoder_file, vgg_weights.encoder_id)  # continued under the pack, same encoder id
    assert json.loads(meta["recipe"])["init"].endswith("adain_decoder.safetensors")
    assert len(list((tmp_path / "back" / "adain" / "samples").iterdir())) == 1  # the last sheet only
    with tarfile.open(out / "transformers.tar") as tar:
        assert "starry_night/starry_night.safetensors" in tar.getnames()

    with tarfile.open(out / "bench.tar") as tar:
        reports = [json.load(tar.extractfile(m)) for m in tar.getmembers() if m.name.endswith(".json")]
    results = [r for report in reports for r in report["results"]]
    assert results and not [r for r in results if "error" in r]
    fidelity = json.loads((out / "fidelity.json").read_text())
    assert {r["method"] for r in fidelity} == {"adain", "transformer"}
    assert all(r["psnr_min_db"] is None or r["psnr_min_db"] >= 40 for r in fidelity)
    assert "skipped" in (out / "pytest-gpu.log").read_text()


def test_dry_run_without_a_pack_says_how_to_make_one(tmp_path):
    env = {**os.environ, "PACK": str(tmp_path / "none"), "OUT": str(tmp_path / "out")}
    proc = subprocess.run(["bash", "bench/gpu_check.sh", "--dry-run"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "none/vgg16.safetensors not found: run 'make gpu-pack'" in proc.stderr
