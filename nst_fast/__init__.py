"""nst-fast: fast neural style transfer (AdaIN, per-style transformer networks, the Gatys baseline).

    import nst_fast, PIL.Image
    out = nst_fast.stylize(PIL.Image.open("photo.jpg"), "starry_night")

`Stylizer` builds a style once for many images, `run_folder` is the batch runner of `nst-fast run`;
errors are NSTError subclasses, one line each. The API loads lazily, so `import nst_fast` is
quick and imports neither torch nor any engine.
"""
from typing import TYPE_CHECKING

from .errors import BackendError, ImageError, NSTError, OptionError, StyleError, VideoError, WeightsError

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the API loads on first use
    from .api import BackendChoice, Stylizer, check_options, run_folder, stylize

__all__ = ["Stylizer", "stylize", "run_folder", "check_options", "BackendChoice",
           "NSTError", "OptionError", "StyleError", "WeightsError", "ImageError", "BackendError", "VideoError"]
_API = {"Stylizer", "stylize", "run_folder", "check_options", "BackendChoice"}


def __getattr__(name: str):
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'nst_fast' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _API)
