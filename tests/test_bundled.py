"""The weights and presets the repository ships: they load, fit the encoder, and stylise real photos."""
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from nst_fast.cli import main
from nst_fast.models import load_decoder
from nst_fast.styles import PRESETS, load_preset, preset_names


def test_presets_fit_the_encoder(vgg_weights):
    names = preset_names()
    assert {"starry_night", "the_scream", "great_wave"} <= set(names)
    for name in names:
        style = load_preset(PRESETS / f"{name}.safetensors", vgg_weights.encoder_id)
        assert style.mean.shape == (1, 512) and (style.std > 0).all()


def test_preset_equals_statistics_of_its_image(data_dir, vgg_weights):
    """A preset is exactly what the style image gives at run time."""
    from nst_fast.styles import resolve_style
    from nst_fast.stylizers import StyleEncoder

    encoder = StyleEncoder(vgg_weights.build("relu4_1"))
    from_image = resolve_style(str(data_dir / "styles" / "starry_night.jpg"), encoder, vgg_weights.encoder_id)
    preset = resolve_style("starry_night", encoder, vgg_weights.encoder_id)
    np.testing.assert_allclose(preset.mean, from_image.mean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(preset.std, from_image.std, rtol=1e-4, atol=1e-4)


def test_bundled_decoder_loads(vgg_weights):
    decoder, meta = load_decoder(None, vgg_weights.encoder_id)
    assert meta["method"] == "adain" and int(meta["steps"]) > 0


def test_bundled_decoder_moves_photos_towards_the_style(data_dir, vgg_weights):
    """Measured, not eyeballed: the output's relu4_1 statistics are closer to the style's than the
    photo's are, and --preserve-color keeps the photo's mean colour closer than plain stylisation."""
    import torch

    from nst_fast.images import load_image, pad_to_multiple
    from nst_fast.methods import adain_runner
    from nst_fast.stylizers import StyleEncoder

    encoder = StyleEncoder(vgg_weights.build("relu4_1"))
    style = load_preset(PRESETS / "starry_night.safetensors", vgg_weights.encoder_id)
    distance = lambda images: float(sum((a - b).pow(2).mean() for a, b in zip(encoder(torch.from_numpy(images)),
                                                                            (style.mean, style.std))))
    photo, _ = pad_to_multiple(load_image(data_dir / "photos" / "golden_gate.jpg", 256))
    with adain_runner(["starry_night"]) as runner:
        plain = runner.infer(photo[None])
    with adain_runner(["starry_night"], preserve_color=True) as runner:
        kept = runner.infer(photo[None])
    with torch.no_grad():
        assert distance(plain) < 0.5 * distance(photo[None])
    # colour without brightness: each pixel minus its grey level, averaged
    chroma = lambda images: (lambda px: (px - px.mean(1, keepdims=True)).mean(0))(images.reshape(-1, 3).astype(float))
    assert np.abs(chroma(kept) - chroma(photo)).sum() < 0.5 * np.abs(chroma(plain) - chroma(photo)).sum()


@pytest.mark.slow
def test_demo_photos_with_a_preset(data_dir, tmp_path):
    """The issue's acceptance run, at a smaller size to stay quick: every demo photo stylised."""
    photos = data_dir / "photos"
    result = CliRunner().invoke(main, ["run", str(photos), "--style", "starry_night", "--max-size", "256",
                                       "-o", str(tmp_path), "--contact-sheet", str(tmp_path / "sheet.jpg")])
    assert result.exit_code == 0, result.output
    inputs = sorted(p.name for p in photos.glob("*.jpg"))
    assert sorted(p.name for p in tmp_path.glob("*.jpg") if p.name != "sheet.jpg") == inputs
    for name in inputs:
        out = np.asarray(Image.open(tmp_path / name), dtype=np.float32)
        assert max(out.shape[:2]) == 256 and out.std() > 10  # an image, not a flat field
    assert (tmp_path / "sheet.jpg").stat().st_size > 10_000


SHIPPED_TRANSFORMERS = ("starry_night", "the_scream", "great_wave")


@pytest.mark.parametrize("style", SHIPPED_TRANSFORMERS)
def test_bundled_transformer_imitates_its_painting(style, data_dir, vgg_weights):
    """Each shipped network loads against our encoder and moves a held-out photo towards its
    painting: the output's Gram matrices are nearer its own painting than the other shipped ones,
    and at least 25 % nearer to it than the photo's are."""
    import torch

    from nst_fast.graphs import TRANSFORMERS, bundled_transformers
    from nst_fast.images import image_files, load_image
    from nst_fast.losses import gram
    from nst_fast.methods import transformer_runner
    from nst_fast.models import load_transformer
    from nst_fast.stylizers import from_uint8

    if style not in bundled_transformers():
        pytest.fail(f"no bundled transformer network for {style} in {TRANSFORMERS}")
    _, meta = load_transformer(TRANSFORMERS / f"{style}.safetensors", vgg_weights.encoder_id)
    assert meta["style"] == style and (TRANSFORMERS / f"{style}.md").is_file()  # and its model card
    vgg = vgg_weights.build("relu4_3")
    taps = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")

    def grams(image):
        with torch.no_grad():
            return [gram(f) for f in vgg(from_uint8(torch.from_numpy(np.ascontiguousarray(image))[None]), taps).values()]

    def distance(image, target):  # each tap relative to the painting's own Gram energy, as in training
        return sum(float((g - t).pow(2).mean() / t.pow(2).mean()) for g, t in zip(grams(image), target))

    paintings = {name: grams(load_image(data_dir / "styles" / f"{name}.jpg", 256)) for name in SHIPPED_TRANSFORMERS}
    photo = load_image(image_files(data_dir / "eval" / "content")[0], 256)
    with transformer_runner(style) as runner:
        output = runner.stylize(photo)
    distances = {name: distance(output, target) for name, target in paintings.items()}
    assert min(distances, key=distances.get) == style, distances
    assert distances[style] < 0.75 * distance(photo, paintings[style])


def test_bundled_decoder_inverts_the_encoder(data_dir):
    """decoder(encoder(photo)) resembles the photo: on these photos the first bundled decoder (4,800
    steps of the paper's recipe) scored 11.2 dB; see the model card for its replacement's figures."""
    from training.card import reconstruction_psnr

    photos = sorted((data_dir / "eval" / "content").glob("*.jpg"))[::10]
    assert reconstruction_psnr(None, photos) > 13.5


@pytest.mark.parametrize("style", SHIPPED_TRANSFORMERS)
def test_bundled_transformer_survives_fp16_storage(style):
    """TensorRT's FP16 stores every activation in half precision: on the synthetic extremes
    (saturated fields, 1-px checkerboards) at the smallest and the widest validated shapes, each
    shipped network keeps PSNR >= 40 dB against itself in FP32 (without centred convolutions,
    The Great Wave fell to 35.8 dB)."""
    from export import validate
    from export.pipeline import feeds_for
    from nst_fast.graphs import transformer_graph

    graph = transformer_graph(style)
    checks = validate.half_storage_checks(graph.name, graph.module, feeds_for(graph, None),
                                          validate.extreme_images(), [(40, 64), (96, 1024)])
    assert all(c.passed for c in checks), [c.line() for c in checks if not c.passed]


def test_centred_convolutions_change_nothing_in_fp32():
    """Subtracting the input's mean and leaving out the bias before an instance norm is exact."""
    import torch

    from nst_fast.transformer_net import ConvLayer, TransformerNet, centered_for_fp16

    torch.manual_seed(0)
    net = TransformerNet().eval()
    for p in net.parameters():  # random affine norms and biases, large enough to matter
        p.data.normal_(0, 0.5)
    centred = centered_for_fp16(net)
    assert sum(isinstance(m, ConvLayer) and m.centered for m in centred.modules()) == 15  # all but the last
    assert not any(isinstance(m, ConvLayer) and m.centered for m in net.modules())  # the original is plain
    x = torch.rand(2, 3, 40, 56) * 0.2 + 0.7  # a bright, low-contrast input: a large mean to remove
    with torch.no_grad():
        torch.testing.assert_close(centred(x), net(x), atol=2e-4, rtol=0)  # 1/20 of a level
