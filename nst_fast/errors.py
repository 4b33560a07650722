"""Errors a user sees as one line: what went wrong, with which file or option, and how to fix it.

Every error nst-fast raises on purpose is an NSTError; `import nst_fast` exports them all."""


class NSTError(Exception):
    """Base of the errors the CLI reports as one line, without a traceback."""


class WeightsError(NSTError):
    """Missing, corrupt or mismatched weights (VGG, decoder, transformer, style preset)."""


class ImageError(NSTError):
    """An input image (or mask) that cannot be decoded or used."""


class StyleError(NSTError):
    """A style that names neither an image file nor a bundled preset or network."""


class BackendError(NSTError):
    """A backend or device that is not available here (not installed, no GPU)."""


class OptionError(NSTError):
    """Options that cannot work, alone or together. `options` are their keyword names in the Python
    API (the CLI shows its flags instead); the message starts with them."""

    def __init__(self, reason: str, *options: str):
        super().__init__(f"{', '.join(options)}: {reason}" if options else reason)
        self.reason, self.options = reason, options


class VideoError(NSTError):
    """An input video that cannot be decoded, or an output video that cannot be written."""


class GraphRefused(NSTError):
    """An exported graph that failed its accuracy check against torch FP32 in the precision asked for."""
