"""AdaIN's style colours: the output recoloured to the painting's RGB mean and covariance."""
import numpy as np
import pytest
from skimage import data

import nst_fast
from nst_fast.color import color_moments
from nst_fast.errors import OptionError, StyleError
from nst_fast.styles import PRESETS, load_preset

PHOTO = data.astronaut()[::4, ::4].copy()  # 128 x 128, a real photo that ships with scikit-image


@pytest.fixture(scope="module")
def painting(vgg_weights):
    return load_preset(PRESETS / "starry_night.safetensors", vgg_weights.encoder_id).colors


def colour_error(image, painting):
    mean, cov = color_moments(np.asarray(image))
    return float(np.abs(mean - painting[0]).max()), float(np.abs(cov - painting[1]).max())


def test_outputs_take_the_paintings_colours(painting):
    recoloured = colour_error(nst_fast.stylize(PHOTO, "starry_night", backend="torch"), painting)
    plain = colour_error(nst_fast.stylize(PHOTO, "starry_night", backend="torch", style_colors=False), painting)
    assert recoloured[0] < 0.02 and recoloured[1] < 0.015, recoloured  # clipping to [0, 1] leaves a little
    assert recoloured[0] < plain[0] / 2 or recoloured[1] < plain[1] / 2, (recoloured, plain)


def test_tiles_share_one_colour_transfer(painting):
    """A tiled image is recoloured by one transfer (from the whole image), so its colours match
    the painting's as well as the untiled output's do, and no tile gets its own palette."""
    photo = np.asarray(data.astronaut())[::2, ::2].copy()  # 256 x 256
    whole = nst_fast.stylize(photo, "starry_night", backend="torch", tile_size=0)
    tiled = nst_fast.stylize(photo, "starry_night", backend="torch", tile_size=256, max_size=None)
    tiled_big = nst_fast.stylize(np.asarray(data.astronaut()), "starry_night", backend="torch", tile_size=256)
    assert colour_error(tiled_big, painting)[0] < 0.03, colour_error(tiled_big, painting)
    np.testing.assert_array_equal(np.asarray(whole), np.asarray(tiled))  # one tile: the same as untiled


def test_strength_zero_gives_the_photo_back():
    out = nst_fast.stylize(PHOTO, "starry_night", backend="torch", alpha=0.0)
    np.testing.assert_array_equal(np.asarray(out), PHOTO)


def test_a_preset_without_colours_says_what_to_do(tmp_path, vgg_weights):
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    source = PRESETS / "starry_night.safetensors"
    with safe_open(str(source), "pt") as f:
        meta = f.metadata()
    old = tmp_path / "old.safetensors"
    save_file({k: v for k, v in load_file(source).items() if not k.startswith("color_")}, str(old), metadata=meta)
    with pytest.raises(StyleError, match="no-style-colors"):
        nst_fast.Stylizer(str(old), backend="torch")
    assert nst_fast.stylize(PHOTO, str(old), backend="torch", style_colors=False).shape == PHOTO.shape


@pytest.mark.parametrize("options", [dict(method="transformer"), dict(preserve_color=True)])
def test_style_colors_refuse_what_they_cannot_mean(options):
    style = "starry_night"
    with pytest.raises(OptionError) as e:
        nst_fast.Stylizer(style, style_colors=True, **options)
    assert "style_colors" in str(e.value)
