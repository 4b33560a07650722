"""AdaIN: output statistics, alpha, style interpolation, FP16 statistics, colour transfer."""
import numpy as np
import pytest
import torch

from nst_fast.adain import Decoder, adain, mean_std, mix_statistics
from nst_fast.color import keep_luminance, match_color
from nst_fast.stylizers import AdaINStylizer, StyleEncoder


def test_adain_output_has_the_style_statistics():
    torch.manual_seed(0)
    content = torch.randn(2, 16, 9, 7) * 3 + 1
    style_mean, style_std = torch.randn(2, 16, 1, 1), torch.rand(2, 16, 1, 1) + 0.5
    mean, std = mean_std(adain(content, style_mean, style_std))
    torch.testing.assert_close(mean, style_mean, atol=1e-4, rtol=0)
    # std carries the eps of the normalisation: sqrt(var + eps)
    torch.testing.assert_close(std, style_std, atol=1e-4, rtol=1e-4)


def test_statistics_stay_finite_in_half_precision():
    """Squares of large activations overflow FP16 (max 65504); statistics are computed in FP32."""
    feat = (torch.rand(1, 8, 16, 16) * 2000).half()
    mean, std = mean_std(feat)
    assert mean.dtype == torch.float32 and torch.isfinite(std).all()
    out = adain(feat, torch.zeros(1, 8, 1, 1), torch.ones(1, 8, 1, 1))
    assert out.dtype == torch.float16 and torch.isfinite(out).all()


def test_mixing_statistics_equals_mixing_adain_outputs():
    torch.manual_seed(1)
    content = torch.randn(1, 8, 5, 5)
    styles = [(torch.randn(1, 8, 1, 1), torch.rand(1, 8, 1, 1) + 0.1) for _ in range(3)]
    weights = [0.5, 0.3, 0.2]
    mixed = adain(content, *mix_statistics(styles, weights))
    separate = sum(w * adain(content, m, s) for w, (m, s) in zip(weights, styles))
    torch.testing.assert_close(mixed, separate, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError):
        mix_statistics(styles, [0, 0, 0])


def test_stylizer_strength_blends_the_full_output_with_the_photo(encoder):
    """alpha 0 gives the photo back exactly (the decoder's inversion error plays no part), and
    alpha a gives a * full-strength output + (1 - a) * photo."""
    decoder = Decoder().eval()
    with torch.no_grad():  # random weights decode to near black; spread the output over the range
        decoder.layers[-1].bias.fill_(0.5)
    stylizer = AdaINStylizer(encoder, decoder)
    images = torch.randint(0, 256, (2, 40, 48, 3), dtype=torch.uint8)
    style_mean, style_std = torch.rand(1, 512) * 5, torch.rand(1, 512) * 5
    with torch.no_grad():
        photo, finite = stylizer(images, style_mean, style_std, torch.zeros(1))
        full, _ = stylizer(images, style_mean, style_std, torch.ones(1))
        half, _ = stylizer(images, style_mean, style_std, torch.full((1,), 0.5))
    assert photo.dtype == torch.uint8 and photo.shape == images.shape
    assert torch.equal(photo, images)
    assert (full.int() - images.int()).abs().float().mean() > 10  # the style does show at full strength
    want = (full.float() + images.float()) / 2
    assert (half.float() - want).abs().max() <= 1  # one level of rounding
    assert finite.tolist() == [True, True]


def test_style_encoder_gives_fp32_statistics(encoder):
    images = torch.randint(0, 256, (3, 24, 24, 3), dtype=torch.uint8)
    mean, std = StyleEncoder(encoder)(images)
    assert mean.shape == (3, 512) and std.shape == (3, 512) and mean.dtype == torch.float32
    assert (std > 0).all()


def test_match_color_gives_the_reference_mean_and_covariance():
    torch.manual_seed(2)
    source = torch.rand(1, 3, 20, 20) * 0.5
    reference = torch.rand(1, 3, 30, 10) * 0.3 + 0.4
    out = match_color(source, reference)
    flat = lambda t: t.permute(1, 0, 2, 3).reshape(3, -1).double()
    torch.testing.assert_close(flat(out).mean(1), flat(reference).mean(1), atol=1e-3, rtol=0)
    torch.testing.assert_close(torch.cov(flat(out)), torch.cov(flat(reference)), atol=1e-3, rtol=0)


def test_keep_luminance_keeps_content_colour_and_stylised_brightness():
    rng = np.random.default_rng(3)
    content = rng.integers(0, 256, (1, 8, 8, 3), dtype=np.uint8)
    grey = np.repeat(rng.integers(60, 200, (1, 8, 8, 1), dtype=np.uint8), 3, axis=-1)
    out = keep_luminance(grey, content)
    luma = lambda a: a.astype(float) @ [0.299, 0.587, 0.114]
    # where no channel was clipped, the output has the stylised luminance
    unclipped = (out > 0).all(-1) & (out < 255).all(-1)
    np.testing.assert_allclose(luma(out)[unclipped], luma(grey)[unclipped], atol=1.0)
    assert np.abs(out.astype(int) - grey).max() > 10  # and colour came from the content


def test_mixed_colour_moments_are_those_of_the_pooled_pixels():
    from nst_fast.color import color_moments, mix_moments

    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 256, (30, 3), dtype=np.uint8), rng.integers(0, 128, (10, 3), dtype=np.uint8)
    mean, cov = mix_moments([color_moments(a), color_moments(b)], [3, 1])
    want_mean, want_cov = color_moments(np.concatenate([a, b]))
    np.testing.assert_allclose(mean, want_mean, atol=1e-12)
    np.testing.assert_allclose(cov, want_cov, atol=1e-12)


def test_no_frame_along_the_edges(vgg_weights):
    """The bundled decoder painted a frame a few pixels wide along every edge (VGG's zero padding
    marks the edge in the features): on a smooth photo the pixel steps in the outer 8 px were
    2.1x those inside. With the mirrored margin (adain.MARGIN) the edges look like the rest."""
    from PIL import Image

    import nst_fast

    rng = np.random.default_rng(0)
    photo = np.asarray(Image.fromarray(rng.integers(60, 200, (4, 5, 3), dtype=np.uint8)).resize((320, 256),
                                                                                                Image.BICUBIC))
    with nst_fast.Stylizer("starry_night", backend="torch", device="cpu") as s:
        out = s.stylize(photo).astype(float).mean(-1)
    dy, dx = np.abs(np.diff(out, axis=0)), np.abs(np.diff(out, axis=1))
    edges = np.concatenate([dy[:8].ravel(), dy[-8:].ravel(), dx[:, :8].ravel(), dx[:, -8:].ravel()]).mean()
    inside = np.concatenate([dy[16:-16, 16:-16].ravel(), dx[16:-16, 16:-16].ravel()]).mean()
    assert edges < 1.3 * inside, (edges, inside)


def test_a_decoder_file_records_its_upsampling_and_older_files_load_as_nearest(tmp_path):
    from safetensors.torch import save_file

    from nst_fast.errors import WeightsError
    from nst_fast.models import load_decoder, save_model

    torch.manual_seed(0)
    decoder, features = Decoder("bilinear"), torch.randn(1, 512, 4, 5)
    save_model(tmp_path / "new.safetensors", decoder, {"method": "adain"})
    loaded, meta = load_decoder(tmp_path / "new.safetensors")
    assert meta["upsample"] == "bilinear" == loaded.upsample
    with torch.no_grad():
        storage_error = (loaded(features) - decoder(features)).abs().mean()  # FP16 weights
    # a file written before the record: trained with nearest, loaded so
    state = {k: v.half().contiguous() for k, v in decoder.state_dict().items()}
    save_file(state, tmp_path / "old.safetensors", metadata={"method": "adain"})
    old, _ = load_decoder(tmp_path / "old.safetensors")
    assert old.upsample == "nearest"
    with torch.no_grad():  # the same weights, another function
        assert (old(features) - loaded(features)).abs().mean() > 10 * storage_error
    save_file(state, tmp_path / "odd.safetensors", metadata={"method": "adain", "upsample": "pixelshuffle"})
    with pytest.raises(WeightsError, match="odd.safetensors: a decoder with 'pixelshuffle' upsampling"):
        load_decoder(tmp_path / "odd.safetensors")
