"""Image I/O: every mode decodes to RGB uint8, every bad file is one ImageError line, saves are atomic."""
from __future__ import annotations

import os
import stat
import struct
import warnings

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageFile

from nst_fast.errors import ImageError
from nst_fast.images import (
    IMAGE_EXTENSIONS, MIN_SIDE, check_image, crop_to, decode_image, load_image, output_suffix, pad_to_multiple, save_image,
)
from nst_fast.sheet import GAP, contact_sheet

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def _load_saved(tmp_path, image: Image.Image, name: str, **save_args) -> np.ndarray:
    path = tmp_path / name
    image.save(path, **save_args)
    out = load_image(path)
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3
    assert out.flags.c_contiguous and out.flags.writeable
    return out


def _noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_extensions_are_lower_case_suffixes():
    assert {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"} == IMAGE_EXTENSIONS


def test_exif_orientation_is_applied(tmp_path):
    image = Image.new("RGB", (40, 20), BLUE)
    image.paste(RED, (0, 0, 8, 8))  # top-left before rotation
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    out = _load_saved(tmp_path, image, "rotated.jpg", exif=exif, quality=95)
    assert out.shape == (40, 20, 3)
    top_right, top_left = out[1:6, -6:-1].mean(axis=(0, 1)), out[1:6, 1:6].mean(axis=(0, 1))
    assert np.allclose(top_right, RED, atol=30)
    assert np.allclose(top_left, BLUE, atol=30)


def test_greyscale_and_bilevel(tmp_path):
    assert (_load_saved(tmp_path, Image.new("L", (3, 2), 77), "grey.png") == 77).all()
    bits = Image.new("1", (2, 1), 0)
    bits.putpixel((1, 0), 1)
    out = _load_saved(tmp_path, bits, "bits.png")
    assert out[0, 0].tolist() == [0, 0, 0] and out[0, 1].tolist() == [255, 255, 255]


def test_alpha_is_composited_on_white(tmp_path):
    rgba = Image.new("RGBA", (3, 1), (255, 0, 0, 255))
    rgba.putpixel((1, 0), (0, 0, 0, 0))
    rgba.putpixel((2, 0), (0, 0, 0, 128))
    out = _load_saved(tmp_path, rgba, "rgba.png")
    assert out[0, 0].tolist() == list(RED)
    assert out[0, 1].tolist() == list(WHITE)
    assert np.abs(out[0, 2].astype(int) - 127).max() <= 1  # half black over white

    la = Image.new("LA", (2, 1), (100, 255))
    la.putpixel((1, 0), (100, 0))
    out = _load_saved(tmp_path, la, "la.png")
    assert out[0, 0].tolist() == [100] * 3 and out[0, 1].tolist() == list(WHITE)


@pytest.mark.parametrize("name", ["palette.png", "palette.gif"])
def test_palette_transparency_is_white(tmp_path, name):
    image = Image.new("P", (2, 1), 0)
    image.putpalette(list(RED) + list(BLUE) + [0] * 762)
    image.putpixel((1, 0), 1)
    out = _load_saved(tmp_path, image, name, transparency=1)
    assert out[0, 0].tolist() == list(RED) and out[0, 1].tolist() == list(WHITE)


def test_cmyk(tmp_path):
    image = Image.new("CMYK", (2, 1), (0, 0, 0, 0))
    image.putpixel((1, 0), (255, 0, 0, 0))  # pure cyan
    out = _load_saved(tmp_path, image, "cmyk.tif")
    assert out[0, 0].tolist() == list(WHITE) and out[0, 1].tolist() == [0, 255, 255]


@pytest.mark.parametrize("dtype, name", [("<u2", "grey16.png"), (">u2", "grey16b.tif"), ("<i4", "grey32.tif")])
def test_wide_greyscale_is_scaled_not_clipped(tmp_path, dtype, name):
    image = Image.fromarray(np.array([[65535, 257 * 100, 0, 128]], dtype=dtype))
    assert image.mode in {"I;16", "I;16B", "I"}
    out = _load_saved(tmp_path, image, name)
    assert out[0, :, 0].tolist() == [255, 100, 0, 0]
    assert (out == out[..., :1]).all()


def test_float_greyscale_in_unit_range(tmp_path):
    image = Image.fromarray(np.array([[1.0, 0.5, 0.0]], dtype=np.float32))
    assert _load_saved(tmp_path, image, "float.tif")[0, :, 0].tolist() == [255, 128, 0]


def test_animated_gif_gives_first_frame(tmp_path):
    frames = [Image.new("RGB", (4, 4), colour) for colour in (RED, BLUE)]
    out = _load_saved(tmp_path, frames[0], "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    assert (out == RED).all()
    note = "GIF with 2 frames: the first one used"
    assert decode_image(tmp_path / "anim.gif").note == note and check_image(tmp_path / "anim.gif") == note
    Image.new("RGB", (4, 4), RED).save(tmp_path / "still.gif")
    assert decode_image(tmp_path / "still.gif").note == "" and check_image(tmp_path / "still.gif") == ""


def _swapped_primaries_profile() -> bytes:
    """An sRGB profile with the red and green primaries exchanged: pixels (255, 0, 0) in this
    colour space are sRGB green. Made by swapping two entries of the sRGB profile's tag table."""
    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    count = struct.unpack(">I", icc[128:132])[0]
    entries = {bytes(icc[132 + 12 * i:136 + 12 * i]): 136 + 12 * i for i in range(count)}  # tag -> offset, size
    red, green = entries[b"rXYZ"], entries[b"gXYZ"]
    icc[red:red + 8], icc[green:green + 8] = icc[green:green + 8], icc[red:red + 8]
    return bytes(icc)


@pytest.mark.parametrize("name", ["p.png", "p.jpg", "p.webp"])
def test_icc_profile_is_converted_to_srgb_unless_kept(tmp_path, name):
    icc = _swapped_primaries_profile()
    Image.new("RGB", (8, 8), RED).save(tmp_path / name, icc_profile=icc, quality=100)
    converted = decode_image(tmp_path / name)
    assert converted.icc is None and np.abs(converted.pixels.astype(int) - (0, 255, 0)).max() <= 3
    kept = decode_image(tmp_path / name, keep_metadata=True)
    assert kept.icc == icc and np.abs(kept.pixels.astype(int) - RED).max() <= 3


def test_damaged_or_mismatched_profiles_are_ignored(tmp_path):
    Image.new("RGB", (4, 4), RED).save(tmp_path / "bad_icc.png", icc_profile=b"not a profile")
    damaged = decode_image(tmp_path / "bad_icc.png", keep_metadata=True)
    assert damaged.pixels[0, 0].tolist() == list(RED) and damaged.icc is None
    rgb_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()  # cannot describe CMYK
    Image.new("CMYK", (2, 1), (255, 0, 0, 0)).save(tmp_path / "cmyk.tif", icc_profile=rgb_profile)
    assert decode_image(tmp_path / "cmyk.tif").pixels[0, 0].tolist() == [0, 255, 255]


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp"])
def test_kept_exif_is_upright_and_survives_saving(tmp_path, suffix):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 30 x 20, shown 20 x 30
    exif[0x010F] = "Canon"
    Image.new("RGB", (30, 20), BLUE).save(tmp_path / "in.jpg", exif=exif)
    decoded = decode_image(tmp_path / "in.jpg", keep_metadata=True)
    assert decoded.pixels.shape == (30, 20, 3) and load_image(tmp_path / "in.jpg").shape == (30, 20, 3)
    assert decode_image(tmp_path / "in.jpg").exif is None  # only kept when asked
    save_image(decoded.pixels, tmp_path / f"out{suffix}", exif=decoded.exif, icc=_swapped_primaries_profile())
    with Image.open(tmp_path / f"out{suffix}") as out:
        assert out.size == (20, 30) and dict(out.getexif()) == {0x0112: 1, 0x010F: "Canon"}
        assert out.info["icc_profile"] == _swapped_primaries_profile()


def test_broken_symbolic_link(tmp_path):
    (tmp_path / "link.png").symlink_to(tmp_path / "gone.png")
    _assert_image_error(tmp_path / "link.png", f"broken symbolic link (to {tmp_path / 'gone.png'})")
    with pytest.raises(ImageError, match="broken symbolic link"):
        check_image(tmp_path / "link.png")


@pytest.mark.parametrize("name", ["wide.png", "wide.jpg"])  # JPEG also takes the draft() path
def test_max_size_downscales_but_never_upscales(tmp_path, name):
    path = tmp_path / name
    Image.new("RGB", (400, 200), (10, 200, 30)).save(path)
    small = load_image(path, max_size=100)
    assert small.shape == (50, 100, 3)
    assert np.allclose(small.mean(axis=(0, 1)), (10, 200, 30), atol=3)
    assert load_image(path, max_size=1000).shape == (200, 400, 3)
    assert load_image(path, max_size=400).shape == (200, 400, 3)


def _assert_image_error(path, reason: str):
    with pytest.raises(ImageError) as info:
        load_image(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert reason in message
    return message


def test_unreadable_files_raise_one_line_image_errors(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    _assert_image_error(empty, "empty file")

    text = tmp_path / "notes.jpg"
    text.write_text("not a picture\n")
    _assert_image_error(text, "not an image Pillow can read")

    _assert_image_error(tmp_path / "missing.png", "no such file")
    _assert_image_error(tmp_path, "directory")


def test_truncated_jpeg(tmp_path):
    whole = tmp_path / "whole.jpg"
    Image.fromarray(_noise(128, 128)).save(whole, quality=90)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    _assert_image_error(cut, "truncated image")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("side", [12, 20])  # 144 px: Pillow only warns; 400 px: Pillow raises
def test_decompression_bomb(tmp_path, monkeypatch, side):
    path = tmp_path / "bomb.png"
    Image.new("RGB", (side, side)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    message = _assert_image_error(path, f"image has {side * side} pixels, above the limit of 100")
    assert "bomb" in message


def test_decompression_bomb_without_the_warning_filter(tmp_path, monkeypatch):
    # catch_warnings is not thread-safe: another decoding thread can drop our filter mid-open.
    path = tmp_path / "bomb.png"
    Image.new("RGB", (12, 12)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    monkeypatch.setattr(warnings, "simplefilter", lambda *args, **kwargs: None)
    with pytest.warns(Image.DecompressionBombWarning):
        _assert_image_error(path, "image has 144 pixels")


@pytest.mark.parametrize("h, w", [(1, 1), (7, 9), (37, 50), (8, 16), (2, 13)])
def test_pad_crop_round_trip(h, w):
    image = _noise(h, w)
    padded, size = pad_to_multiple(image, 8)
    assert size == (h, w)
    assert padded.shape[0] % 8 == 0 and padded.shape[1] % 8 == 0 and padded.shape[2] == 3
    # no more than needed: the next multiple of 8, or the minimum the graphs need (AdaIN's margin)
    assert padded.shape[0] == max(MIN_SIDE, -(-h // 8) * 8) and padded.shape[1] == max(MIN_SIDE, -(-w // 8) * 8)
    assert np.array_equal(crop_to(padded, size), image)


def test_pad_reflects_and_falls_back_to_edge():
    image = np.arange(7 * 1).reshape(7, 1).astype(np.uint8)
    padded, _ = pad_to_multiple(image, 8, minimum=1)
    assert padded.shape == (8, 8)
    assert padded[7, 0] == image[5, 0]  # reflection mirrors about the last row
    assert (padded == padded[:, :1]).all()  # one column is too narrow to mirror: repeat it


@pytest.mark.parametrize("name, fmt, expected", [
    ("a.JPG", None, ".jpg"), ("a.jpeg", None, ".jpeg"), ("a.webp", None, ".webp"), ("a.png", None, ".png"),
    ("a.bmp", None, ".png"), ("a.tiff", None, ".png"), ("a.gif", None, ".png"),
    ("a.png", "jpg", ".jpg"), ("a.jpg", "webp", ".webp"), ("a.bmp", "png", ".png"),
])
def test_output_suffix(name, fmt, expected):
    assert output_suffix(name, fmt) == expected


def test_output_suffix_rejects_unknown_format():
    with pytest.raises(ValueError, match="gif"):
        output_suffix("a.png", "gif")


def test_save_round_trips_and_leaves_no_partial_files(tmp_path):
    image = _noise(24, 40)
    save_image(image, tmp_path / "out.png")
    assert np.array_equal(load_image(tmp_path / "out.png"), image)

    smooth = np.broadcast_to(np.linspace(0, 255, 40, dtype=np.uint8)[None, :, None], (24, 40, 3)).copy()
    for name in ("out.jpg", "out.webp"):
        save_image(smooth, tmp_path / "sub" / name, quality=95)
        assert np.abs(load_image(tmp_path / "sub" / name).astype(int) - smooth).mean() < 3
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["out.jpg", "out.png", "out.webp", "sub"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_saved_file_permissions_follow_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        save_image(_noise(4, 4), tmp_path / "out.png")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.png").stat().st_mode) == mode


def test_failed_saves_leave_nothing_behind(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="out.gif"):
        save_image(_noise(4, 4), tmp_path / "out.gif")
    with pytest.raises(ValueError, match="uint8"):
        save_image(np.zeros((4, 4, 3), np.float32), tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []

    save_image(_noise(4, 4, seed=1), tmp_path / "out.png")
    before = (tmp_path / "out.png").read_bytes()

    def broken_save(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"half an image")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_image(_noise(4, 4, seed=2), tmp_path / "out.png")
    assert [p.name for p in tmp_path.iterdir()] == ["out.png"]
    assert (tmp_path / "out.png").read_bytes() == before  # the old output survives intact


def test_contact_sheet(tmp_path):
    cell = 32
    rows = [[np.full((64, 32, 3), RED, np.uint8), np.full((10, 40, 3), BLUE, np.uint8)],
            [np.full((8, 8, 3), RED, np.uint8)]]
    plain = tmp_path / "plain.png"
    contact_sheet(rows, plain, cell=cell)
    sheet = load_image(plain)
    assert sheet.shape == (GAP + 2 * (cell + GAP), GAP + 2 * (cell + GAP), 3)
    # A tall image fills its cell's height and is centred across; the empty cell stays background.
    assert sheet[GAP, GAP + cell // 2].tolist() == list(RED)
    assert sheet[GAP, GAP].tolist() != list(RED)
    assert sheet[GAP + cell + GAP + cell // 2, GAP + cell + GAP + cell // 2].tolist() == sheet[0, 0].tolist()

    labelled = tmp_path / "labelled.jpg"
    contact_sheet(rows, labelled, labels=["content", "style"], column_titles=["a", "b"], cell=cell)
    with Image.open(labelled) as image:
        assert image.width > sheet.shape[1] and image.height > sheet.shape[0]
    with pytest.raises(ValueError, match="labels"):
        contact_sheet(rows, tmp_path / "bad.png", labels=["one"])
