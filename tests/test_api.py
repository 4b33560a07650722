"""The Python API (`import nst_fast`): types in and out, sizes, batching by shape, the same pixels
as the CLI, and its errors. Small images and the bundled weights, on torch on the CPU."""
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import nst_fast
from nst_fast.cli import main

CPU = dict(backend="torch", device="cpu")


def photo(h, w, seed=0):
    """Smooth, photo-like colours (noise would be a poor test of a style network)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC))


@pytest.fixture(scope="module")
def stylizer(vgg_weights):
    with nst_fast.Stylizer("starry_night", **CPU) as s:
        yield s


def test_import_is_quick_and_loads_no_engine():
    code = "import sys, nst_fast; print(sorted(m for m in ('torch', 'onnxruntime', 'tensorrt', 'ray') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert {"Stylizer", "stylize", "run_folder", "NSTError", "OptionError"} <= set(dir(nst_fast))


def test_pil_in_pil_out_and_array_in_array_out(stylizer):
    image = photo(44, 60)
    out = stylizer.stylize(Image.fromarray(image))
    assert isinstance(out, Image.Image) and out.size == (60, 44) and out.mode == "RGB"
    array = stylizer.stylize(image)
    assert isinstance(array, np.ndarray) and array.shape == image.shape and array.dtype == np.uint8
    np.testing.assert_array_equal(np.asarray(out), array)
    assert np.abs(array.astype(int) - image).mean() > 10  # stylised, not passed through
    grey = stylizer.stylize(Image.fromarray(image[..., 0], "L"))  # any PIL mode
    assert grey.size == (60, 44) and grey.mode == "RGB"
    assert "torch on the CPU" in str(stylizer.backend)


def test_max_size_and_tiles(vgg_weights):
    with nst_fast.Stylizer("starry_night", max_size=320, tile_size=256, **CPU) as s:
        out = s.stylize(photo(250, 400))
        assert out.shape == (200, 320, 3)  # downscaled to max_size, then through 2 tiles


def test_a_batch_of_mixed_sizes_equals_one_by_one(stylizer):
    images = [photo(32, 48, 1), photo(40, 24, 2), photo(32, 48, 3), photo(17, 29, 4)]
    batch = stylizer.stylize_batch(images)
    assert [b.shape for b in batch] == [i.shape for i in images]
    for image, out in zip(images, batch):
        assert np.abs(stylizer.stylize(image).astype(int) - out).max() <= 1


def test_api_equals_the_cli(tmp_path, stylizer):
    image = photo(48, 64, 5)
    Image.fromarray(image).save(tmp_path / "p.png")
    result = CliRunner().invoke(main, ["run", str(tmp_path / "p.png"), "-s", "starry_night", "--backend", "torch",
                                       "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    cli = np.asarray(Image.open(tmp_path / "out" / "p.png"), dtype=int)
    assert np.abs(cli - stylizer.stylize(image)).max() <= 1


def test_style_as_an_image_and_stylize_in_one_call(vgg_weights):
    style = Image.fromarray(photo(64, 64, 6))
    a = nst_fast.stylize(photo(32, 32), style, **CPU)
    b = nst_fast.stylize(photo(32, 32), np.asarray(style), alpha=0.5, **CPU)
    assert a.shape == b.shape == (32, 32, 3) and np.abs(a.astype(int) - b).mean() > 1


def test_run_folder_returns_its_summary(tmp_path, vgg_weights):
    (tmp_path / "in").mkdir()
    Image.fromarray(photo(24, 32)).save(tmp_path / "in" / "a.png")
    (tmp_path / "in" / "bad.jpg").write_bytes(b"not a jpeg")
    summary = nst_fast.run_folder(tmp_path / "in", tmp_path / "out", "starry_night", progress=False, **CPU)
    assert {j.src.name: j.status for j in summary.jobs} == {"a.png": "done", "bad.jpg": "failed"}
    assert Image.open(tmp_path / "out" / "a.png").size == (32, 24)
    again = nst_fast.run_folder([tmp_path / "in"], tmp_path / "out", "starry_night", progress=False, **CPU)
    assert again.count("skipped") == 1


def test_errors_are_the_documented_types(tmp_path, vgg_weights):
    from nst_fast.adain import Decoder
    from nst_fast.models import save_model

    with pytest.raises(nst_fast.StyleError, match="no_such_style: no such style image or preset"):
        nst_fast.Stylizer("no_such_style")
    other = tmp_path / "other.safetensors"
    save_model(other, Decoder(), {"method": "adain", "encoder_id": "vgg19-torchvision:0123456789abcdef"})
    with pytest.raises(nst_fast.WeightsError, match=f"{other}.*trained against VGG encoder"):
        nst_fast.Stylizer("starry_night", model=other, **CPU)
    with pytest.raises(nst_fast.OptionError, match="^style_weights: 1 weights for 2 styles"):
        nst_fast.Stylizer(["starry_night", "udnie"], style_weights=[1])
    with pytest.raises(nst_fast.OptionError, match="^alpha: "):
        nst_fast.Stylizer("starry_night", alpha=2)
    with pytest.raises(nst_fast.OptionError, match="^colour: not an option"):
        nst_fast.run_folder(tmp_path, tmp_path / "out", "starry_night", colour=True)
    with pytest.raises(nst_fast.BackendError, match="tensorrt"):
        nst_fast.Stylizer("starry_night", backend="tensorrt", device="cpu")
    with pytest.raises(nst_fast.ImageError, match="uint8 H x W x 3"):
        nst_fast.stylize(np.zeros((8, 8), np.float32), "starry_night", **CPU)
    assert all(issubclass(e, nst_fast.NSTError) for e in (nst_fast.StyleError, nst_fast.OptionError))


def test_the_readme_example_on_a_shared_photo(data_dir):
    """The issue's acceptance line, on a real photo (smaller, to stay quick)."""
    code = ("import nst_fast, PIL.Image; print(nst_fast.stylize(PIL.Image.open(%r), 'starry_night', max_size=128).size)"
            % str(data_dir / "photos" / "chicago.jpg"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    with Image.open(data_dir / "photos" / "chicago.jpg") as im:
        w, h = im.size
    assert out.stdout.strip() == str((128, round(h * 128 / w)) if w >= h else (round(w * 128 / h), 128))


def test_a_precision_auto_chose_that_the_weights_fail_falls_back_to_fp32(monkeypatch, vgg_weights):
    from nst_fast import backends, methods
    from nst_fast.errors import GraphRefused

    chosen = backends.Backend("torch", "cpu", "bf16")
    monkeypatch.setattr(backends, "choose", lambda *a, **k: (chosen, []))
    real = methods.adain_runner

    def refuses_bf16(*args, **kwargs):
        if args[6].precision == "bf16":
            raise GraphRefused("adain_stylizer (torch bf16) disagrees with torch FP32: PSNR 29.6 dB")
        return real(*args, **kwargs)

    monkeypatch.setattr(methods, "adain_runner", refuses_bf16)
    with nst_fast.Stylizer("starry_night") as s:  # precision auto
        assert s.backend.backend.precision == "fp32" and "bf16 refused" in str(s.backend)
        assert s.stylize(photo(32, 32)).shape == (32, 32, 3)
    with pytest.raises(GraphRefused):  # asked for by name: no fallback
        nst_fast.Stylizer("starry_night", precision="bf16")
