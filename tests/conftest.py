import os
from pathlib import Path

import pytest
import torch

# The project's shared images lie beside the checkout (../shared/data); NST_FAST_DATA points elsewhere.
DATA = Path(os.environ.get("NST_FAST_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session", autouse=True)
def graph_cache(tmp_path_factory):
    """Graphs exported on the fly by `run` go to a fresh folder, not the user's cache."""
    path = tmp_path_factory.mktemp("graphs")
    os.environ["NST_FAST_GRAPH_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session", autouse=True)
def user_home(tmp_path_factory):
    """User presets go to a fresh folder, not the user's own."""
    path = tmp_path_factory.mktemp("home")
    os.environ["NST_FAST_HOME"] = str(path)
    return path


@pytest.fixture(scope="session")
def decoder_file(tmp_path_factory, vgg_weights):
    """A random-weight AdaIN decoder, so tests do not depend on the shipped weights."""
    from nst_fast.adain import Decoder
    from nst_fast.models import save_model

    path = tmp_path_factory.mktemp("models") / "decoder.safetensors"
    torch.manual_seed(0)
    decoder = Decoder()
    with torch.no_grad():  # random weights decode to near black; centre and spread the output
        decoder.layers[-1].bias.fill_(0.5)
        decoder.layers[-1].weight.mul_(20)
    save_model(path, decoder, {"method": "adain", "encoder_id": vgg_weights.encoder_id})
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.skip(f"shared data set not found at {DATA}")
    return DATA


@pytest.fixture(scope="session")
def vgg_weights():
    from nst_fast.errors import WeightsError
    from nst_fast.weights import vgg_weights

    try:
        return vgg_weights()
    except WeightsError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def encoder(vgg_weights):
    return vgg_weights.build("relu4_1")
