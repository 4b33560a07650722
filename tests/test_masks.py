"""Spatial style masks (the AdaIN paper's Fig. 8): region weights, the all-white / all-black / half
masks measured by the statistics of each region, tiles, the onnxruntime backend and the CLI.
The bundled decoder and presets, on small images."""
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import nst_fast
from nst_fast.cli import main
from nst_fast.masks import load_mask, region_weights

A, B = "starry_night", "the_scream"
CPU = dict(backend="torch", device="cpu")
SIDE, LEFT, RIGHT = 192, 84, 108  # the test photo's side; the halves, away from the mask's soft edge


def photo(h, w, seed=0):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, h // 16), max(2, w // 16), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BICUBIC))


def half_mask(h=10, w=10):
    mask = np.zeros((h, w), np.float32)
    mask[:, : w // 2] = 1  # left half: the first style
    return mask


def test_region_weights_sum_to_one_and_follow_the_masks():
    weights = region_weights([half_mask()], (6, 8))
    assert weights.shape == (6, 8, 2)
    np.testing.assert_allclose(weights.sum(-1), 1, atol=1e-6)
    assert (weights[:, :3, 0] == 1).all() and (weights[:, 5:, 1] == 1).all()  # soft only at the edge
    both = region_weights([np.ones((4, 4), np.float32)] * 2, (4, 4))  # overlapping masks share
    np.testing.assert_allclose(both, np.broadcast_to([0.5, 0.5, 0], (4, 4, 3)), atol=1e-6)
    assert load_mask(Image.fromarray(np.full((3, 3), 255, np.uint8))).min() == 1


@pytest.fixture(scope="module")
def image():
    """A real photo (scikit-image's astronaut, inside its wheel): the bundled decoder's styles
    show on photos, less on synthetic colour fields. At 192 px: at 128 the decoder's view of one
    region reaches across the other and its mirrored margin (adain.MARGIN), and each half's
    statistics fall to about halfway between the two styles'."""
    data = pytest.importorskip("skimage.data", reason="scikit-image is not installed")
    return np.asarray(Image.fromarray(data.astronaut()).resize((SIDE, SIDE), Image.LANCZOS))


@pytest.fixture(scope="module")
def alone(vgg_weights, image):
    """Each style alone, for comparison."""
    out = {}
    for style in (A, B):
        with nst_fast.Stylizer(style, **CPU) as s:
            out[style] = s.stylize(image).astype(int)
    return out


def test_all_white_is_the_first_style_and_all_black_the_second(image, alone):
    for value, style in [(1.0, A), (0.0, B)]:
        mask = np.full((8, 8), value, np.float32)
        with nst_fast.Stylizer([A, B], masks=[mask], **CPU) as s:
            diff = np.abs(s.stylize(image).astype(int) - alone[style])
        # the region's statistics are taken on the host, the plain run's in the graph; the colour
        # transfer can carry their float difference across a rounding step: rarely 2 levels
        assert diff.max() <= 2 and (diff > 1).mean() < 1e-3, (style, diff.max(), (diff > 1).mean())


def test_a_half_mask_gives_each_half_its_style(image, alone, vgg_weights):
    from nst_fast.styles import PRESETS, load_preset
    from nst_fast.stylizers import StyleEncoder

    encoder = StyleEncoder(vgg_weights.build("relu4_1"))
    presets = {s: load_preset(PRESETS / f"{s}.safetensors", vgg_weights.encoder_id) for s in (A, B)}

    def distance(region, style):  # relu4_1 mean and std against the style's
        with torch.no_grad():
            mean, std = encoder(torch.from_numpy(np.ascontiguousarray(region, dtype=np.uint8))[None])
        return float((mean - presets[style].mean).pow(2).mean() + (std - presets[style].std).pow(2).mean())

    # the regions' own relu4_1 statistics, before the recolouring to each painting's colours
    with nst_fast.Stylizer([A, B], masks=[half_mask()], style_colors=False, **CPU) as s:
        out = s.stylize(image)
    left, right = out[:, :LEFT], out[:, RIGHT:]  # away from the soft edge
    assert distance(left, A) < 0.8 * distance(left, B)
    assert distance(right, B) < 0.8 * distance(right, A)
    # and each half is near that style alone, not the other one
    with nst_fast.Stylizer([A, B], masks=[half_mask()], **CPU) as s:
        out = s.stylize(image).astype(int)
    for part, style, other in [(slice(0, LEFT), A, B), (slice(RIGHT, SIDE), B, A)]:
        near = np.abs(out[:, part] - alone[style][:, part]).mean()
        assert near < 0.5 * np.abs(out[:, part] - alone[other][:, part]).mean()


def test_each_region_takes_its_paintings_colours(image, vgg_weights):
    from nst_fast.color import color_moments
    from nst_fast.styles import PRESETS, load_preset

    colors = {s: load_preset(PRESETS / f"{s}.safetensors", vgg_weights.encoder_id).colors for s in (A, B)}

    def error(region, style):
        mean, cov = color_moments(region)
        return float(np.abs(mean - colors[style][0]).sum() + np.abs(cov - colors[style][1]).sum())

    with nst_fast.Stylizer([A, B], masks=[half_mask()], **CPU) as s:
        out = s.stylize(image)
    left, right = out[:, :LEFT], out[:, RIGHT:]
    assert error(left, A) < 0.5 * error(left, B) and error(right, B) < 0.5 * error(right, A)


def test_masks_in_tiles_match_an_untiled_run(vgg_weights):
    image = photo(192, 400, 1)  # wider than one tile of tiling.MIN_TILE
    mask = half_mask(20, 20)

    def run(**options):
        with nst_fast.Stylizer([A, B], **options, **CPU) as s:
            return s.stylize(image).astype(int)
    whole, tiled = run(masks=[mask], tile_size=0), run(masks=[mask], tile_size=256)
    plain_whole, plain_tiled = run(style_weights=[1, 0], tile_size=0), run(style_weights=[1, 0], tile_size=256)
    # the masks add no error of their own to what tiling costs anyway
    assert np.abs(tiled - whole).mean() < 1.5 * np.abs(plain_tiled - plain_whole).mean() + 0.5


def test_onnxruntime_gives_the_same_masked_result(image, vgg_weights):
    pytest.importorskip("onnxruntime")
    mask = half_mask()
    with nst_fast.Stylizer([A, B], masks=[mask], **CPU) as s:
        reference = s.stylize(image).astype(int)
    with nst_fast.Stylizer([A, B], masks=[mask], backend="onnxruntime", device="cpu") as s:
        assert "onnxruntime" in str(s.backend)
        assert np.abs(s.stylize(image).astype(int) - reference).mean() < 0.5


def test_cli_mask(tmp_path, image, vgg_weights):
    Image.fromarray(image).save(tmp_path / "p.png")
    Image.fromarray((half_mask(32, 32) * 255).astype(np.uint8)).save(tmp_path / "mask.png")
    args = ["run", str(tmp_path / "p.png"), "-s", A, "-s", B, "--backend", "torch", "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(main, [*args, "--mask", str(tmp_path / "mask.png")])
    assert result.exit_code == 0, result.output
    with nst_fast.Stylizer([A, B], masks=[tmp_path / "mask.png"], **CPU) as s:
        api = s.stylize(image).astype(int)
    assert np.abs(np.asarray(Image.open(tmp_path / "out" / "p.png"), dtype=int) - api).max() <= 1
    two = CliRunner().invoke(main, [*args, "--mask", str(tmp_path / "mask.png"), "--mask", str(tmp_path / "mask.png")])
    assert two.exit_code == 2 and "--mask: 2 masks for 2 styles" in two.output
    with pytest.raises(nst_fast.OptionError, match="^masks: are for method adain"):
        nst_fast.Stylizer(A, method="transformer", masks=[half_mask()])
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(nst_fast.ImageError, match="bad.png: cannot read this mask"):
        nst_fast.Stylizer([A, B], masks=[tmp_path / "bad.png"], **CPU)
