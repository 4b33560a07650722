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
