"""Synthetic video clips for tests and benchmarks: a photo panned and zoomed, with a sine tone.

Written with PyAV (the `video` extra)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

NTSC = Fraction(30000, 1001)


def pan_frames(photo: np.ndarray, size: tuple[int, int], count: int, zoom: float = 0.25):
    """`count` frames of (width, height) `size`: a window over `photo` that slides from its left
    to its right side while zooming in by `zoom`."""
    import cv2

    w, h = size
    ph, pw = photo.shape[:2]
    fit = min(pw / w, ph / h) * 0.7  # the widest window that leaves room to move
    for i in range(count):
        t = i / max(1, count - 1)
        scale = fit / (1 + zoom * t)
        cw, ch = w * scale, h * scale
        x = (pw - cw) * (0.1 + 0.8 * t)
        y = (ph - ch) * (0.4 + 0.2 * t)
        # an affine map from the window to the output, so sub-pixel motion stays smooth
        matrix = np.float32([[1 / scale, 0, -x / scale], [0, 1 / scale, -y / scale]])
        yield cv2.warpAffine(photo, matrix, (w, h), flags=cv2.INTER_AREA if scale > 1 else cv2.INTER_LINEAR)


def write_clip(path: str | Path, frames, rate: Fraction = NTSC, pts: list[int] | None = None,
               tone: float | None = 440.0, sample_rate: int = 48000, codec: str = "libx264",
               audio_codec: str = "aac", rotation: int = 0, options: dict | None = None,
               pix_fmt: str = "yuv420p") -> None:
    """Encode uint8 RGB `frames` at `rate` (time base 1/rate; `pts` for variable frame rates), with
    a stereo sine `tone` (Hz) as long as the video, or no audio where None. `rotation` sets the
    display matrix (degrees counter-clockwise); `options` go to the muxer (e.g. movflags). Odd
    sizes are padded for yuv420p; pix_fmt yuv444p keeps them (what an odd-sized input looks like)."""
    import av

    frames = list(frames)
    pts = list(range(len(frames))) if pts is None else pts
    h, w = frames[0].shape[:2]
    pad = (h % 2, w % 2) if pix_fmt == "yuv420p" else (0, 0)
    with av.open(str(path), "w", options=options or {}) as out:
        video = out.add_stream(codec, rate=rate)
        video.width, video.height, video.pix_fmt = w + pad[1], h + pad[0], pix_fmt
        video.codec_context.time_base = 1 / rate
        if rotation:
            video.set_display_rotation(rotation)
        audio = out.add_stream(audio_codec, rate=sample_rate, layout="stereo") if tone else None
        for frame, p in zip(frames, pts):
            frame = np.pad(frame, ((0, pad[0]), (0, pad[1]), (0, 0)), mode="edge")
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts, vf.time_base = p, 1 / rate
            out.mux(video.encode(vf))
        out.mux(video.encode(None))
        if audio is not None:
            duration = (pts[-1] + 1) / rate
            samples = int(duration * sample_rate)
            t = np.arange(samples) / sample_rate
            wave = (0.3 * np.sin(2 * np.pi * tone * t)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = np.stack([wave[start:start + 1024]] * 2)
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="stereo")
                af.sample_rate, af.pts, af.time_base = sample_rate, start, Fraction(1, sample_rate)
                out.mux(audio.encode(af))
            out.mux(audio.encode(None))
