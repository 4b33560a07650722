"""Errors a user sees as one line: what went wrong, with which file, and how to fix it."""


class NSTError(Exception):
    """Base of the errors the CLI reports as one line, without a traceback."""


class WeightsError(NSTError):
    """Missing, corrupt or mismatched weights (VGG, decoder, transformer, style preset)."""


class ImageError(NSTError):
    """An input image that cannot be decoded or used."""


class VideoError(NSTError):
    """An input video that cannot be decoded, or an output video that cannot be written."""
