"""Video files: decode with PyAV, stylise in batches, stabilise, encode; sound copied.

One video is one job (`stylize_video`): frames are streamed, so memory stays flat whatever the
length (a batch of frames, and for stabilisation only the previous input and output frame).
Timing is kept exactly: each output frame carries its input frame's pts in the input stream's time
base, so 29.97 fps and variable frame rates stay in sync with the sound. Audio streams are copied
packet for packet, or re-encoded (AAC, else Opus) where the output container cannot hold them.
Rotation metadata is applied to the pixels (PyAV does not), so the output is upright without it.

Needs the `video` extra (PyAV, OpenCV); both are imported only when a video is handled.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from tqdm import tqdm

from .errors import NSTError, VideoError
from .fileio import atomic_path
from .uris import URIPath, as_path

VIDEO_EXTENSIONS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
                    ".avi": "avi"}

# The encoders tried for each container, best first; the first one this PyAV build has is used.
VIDEO_CODECS = {
    "webm": ["libvpx-vp9", "libvpx"],
    "avi": ["libx264", "mpeg4"],
}
H264_FIRST = ["libx264", "libopenh264", "mpeg4"]
# Codecs whose `crf` option is the quality knob, with their default (visually near-lossless-ish).
CRF_DEFAULTS = {"libx264": 18, "libvpx-vp9": 31, "libvpx": 10}
AUDIO_CODECS = ["aac", "libopus", "libvorbis"]

# uint8 RGB frames (H x W x 3, all of one size) -> their stylised frames, same sizes
StylizeBatch = Callable[[list[np.ndarray]], list[np.ndarray]]


def import_av():
    """PyAV, or one NSTError naming the extra to install (OpenCV is checked too: the stabiliser
    and the scene-cut check need it, and the error should come before any work)."""
    try:
        import av
        import cv2  # noqa: F401
    except ImportError as e:
        raise NSTError(f"video needs PyAV and OpenCV (no module {e.name!r}): pip install 'nst-fast[video]'") from None
    return av


def is_video(path: str | Path | URIPath) -> bool:
    return as_path(path).suffix.lower() in VIDEO_EXTENSIONS


@dataclass
class VideoOptions:
    batch_size: int = 4
    crf: int | None = None  # encoder quality (lower is better); None: the codec's default above
    stabilize: bool = True  # False: plain per-frame stylisation
    stability: float = 0.85  # b: weight of the warped previous output where the flow is trusted
    restore_detail: bool = True  # give the blend the detail energy of the fresh stylisation
    flow_preset: str = "fast"  # DIS preset for stabilising: ultrafast or fast
    flow_scale: float = 0.5  # flow computed at this fraction of the frame size
    smoothing: float = 0.8  # momentum of AdaIN's content statistics over time (with a hook)
    max_size: int | None = None  # frames downscaled (by FFmpeg, area) so their long side is at most this
    progress: bool = True  # a bar per video with frames/s and ETA, on a terminal only


@dataclass
class VideoResult:
    source: Path
    output: Path
    frames: int
    seconds: float
    codec: str
    audio: list[str] = field(default_factory=list)  # per audio stream: 'copied aac', 're-encoded pcm_s16le to aac'
    cuts: int = 0  # scene cuts found (stabilisation restarted there)
    notes: list[str] = field(default_factory=list)  # what a user should know: fallback codec, padding

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def runner_batch(runner) -> StylizeBatch:
    """A StylizeBatch from a Runner of nst_fast.runners (padding for the graph, cropping back)."""
    from .content_stats import padded_batch
    from .images import crop_to

    def stylize_batch(frames):
        batch, sizes = padded_batch(frames)
        return [crop_to(out, size) for out, size in zip(runner.infer(batch), sizes)]
    return stylize_batch


def stylize_video(source: str | Path, output: str | Path, stylize_batch: StylizeBatch,
                  options: VideoOptions | None = None, statistics=None) -> VideoResult:
    """Stylise one video into `output` (its container from the suffix), written atomically.

    `statistics` is an optional content_stats.ContentStatistics hook (AdaIN): with stabilisation on,
    the content statistics are smoothed over time through it. Raises VideoError naming the file
    for a video that cannot be read (corrupt, truncated, no video stream) or written."""
    from .temporal import Flow, MotionTracker, Stabilizer

    options = options or VideoOptions()
    source, output = Path(source), Path(output)
    start = time.perf_counter()
    reader = Reader(source, options.max_size)
    with reader.open() as container, atomic_path(output) as tmp, _translate(output, "cannot write the video"), \
            Writer(tmp, output, reader, container.streams.audio, options.crf) as writer:
        tracker = MotionTracker(Flow(options.flow_preset, options.flow_scale)) if options.stabilize else None
        stabilizer = Stabilizer(options.stability, options.restore_detail)
        stylize = Stylize(stylize_batch, statistics if options.stabilize else None, options.smoothing)
        cuts = 0
        # disable=None: a bar on a terminal, none in logs and pipes (as the batch runner's)
        with tqdm(total=reader.expected or None, desc=source.name, unit="frame", leave=False,
                  disable=None if options.progress else True) as bar:
            for batch in batches(reader.frames(container, writer.audio), options.batch_size):
                motions = [tracker(frame) if tracker else None for frame, _ in batch]
                cuts += sum(m is not None and m.cut for m in motions)
                stylised = stylize([frame for frame, _ in batch], [m is None or m.cut for m in motions])
                for (_, pts), out, motion in zip(batch, stylised, motions):
                    writer.write(stabilizer(out, motion) if tracker else out, pts)
                bar.update(len(batch))
        reader.check_complete()
        writer.close()
    return VideoResult(source, output, reader.decoded, time.perf_counter() - start, writer.codec,
                       writer.audio_notes, cuts, reader.notes + writer.notes)


def describe_video(path: str | Path, max_size: int | None = None) -> str:
    """One line about a video (size after max_size, frames, rate), reading only its first frame;
    raises VideoError as stylize_video would for a file that cannot be opened or decoded."""
    return Reader(Path(path), max_size).describe()


def batches(items: Iterator, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Stylize:
    """Plain stylize_batch, or, with a ContentStatistics hook, AdaIN with its content statistics
    smoothed over time (restarting at every cut)."""

    def __init__(self, stylize_batch: StylizeBatch, statistics, momentum: float):
        from .content_stats import MovingAverage

        self.stylize_batch, self.statistics = stylize_batch, statistics
        self.average = MovingAverage(momentum)

    def __call__(self, frames: list[np.ndarray], cuts: list[bool]) -> list[np.ndarray]:
        if self.statistics is None:
            return self.stylize_batch(frames)
        own = self.statistics.content_statistics(frames)
        return self.statistics.stylize_with_statistics(frames, own, self.average(*own, cuts))


def _reason(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


class Reader:
    """The input: probed once for the first frame (size, rotation), then opened to stream."""

    def __init__(self, path: Path, max_size: int | None = None):
        self.path, self.av = path, import_av()
        self.decoded, self.notes = 0, []
        with self.open() as container:
            if not container.streams.video:
                raise VideoError(f"{path}: no video stream")
            stream = container.streams.video[0]
            with _translate(path, "cannot read this video"):
                first = next(container.decode(stream), None)
            if first is None:
                raise VideoError(f"{path}: no frame could be decoded (truncated or corrupt?)")
            # the size frames are decoded at: the first one's, downscaled to max_size
            self.width, self.height = first.width, first.height
            if max_size and max(first.width, first.height) > max_size:
                from .images import fit_size

                self.width, self.height = fit_size((first.width, first.height), max_size)
                self.notes.append(f"downscaled from {first.width}x{first.height} to {self.width}x{self.height} "
                                  f"(max size {max_size})")
            self.turns = round((first.rotation or 0) / 90) % 4  # counter-clockwise quarter turns
            self.time_base = stream.time_base
            self.rate = stream.average_rate or stream.guessed_rate or Fraction(30)
            self.expected = stream.frames  # from the container's index; 0 where it has none

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the upright frames."""
        return (self.height, self.width) if self.turns % 2 else (self.width, self.height)

    @contextlib.contextmanager
    def open(self):
        with _translate(self.path, "cannot read this video"):
            container = self.av.open(str(self.path))
        with container:
            yield container

    def frames(self, container, audio: Callable) -> Iterator[tuple[np.ndarray, int]]:
        """(upright uint8 RGB frame, pts in self.time_base) in order; audio packets go to `audio`,
        then None at the end."""
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        step = max(1, round(1 / (self.rate * self.time_base)))
        pts = None
        with _translate(self.path, "cannot read this video"):
            for packet in container.demux(stream, *container.streams.audio):
                if packet.stream.type == "audio":
                    audio(packet)
                    continue
                for frame in packet.decode():
                    # every frame at the first one's size (a rare mid-stream change is rescaled)
                    pixels = frame.to_ndarray(format="rgb24", width=self.width, height=self.height,
                                              interpolation="AREA")
                    pts = frame.pts if frame.pts is not None else (pts + step if pts is not None else 0)
                    self.decoded += 1
                    yield np.ascontiguousarray(np.rot90(pixels, self.turns)), pts
        audio(None)

    def describe(self) -> str:
        """What a dry run says about the video: upright size, frames and rate."""
        w, h = self.size
        frames = f"{self.expected} frames" if self.expected else "frame count unknown"
        return f"video {w}x{h}, {frames} at {float(self.rate):.3g} fps"

    def check_complete(self) -> None:
        if self.expected and self.decoded < self.expected:
            raise VideoError(f"{self.path}: truncated or corrupt: only {self.decoded} of "
                             f"{self.expected} frames could be decoded")


class _translate:
    """Turns PyAV's errors into one VideoError line naming the file."""

    def __init__(self, path: Path, what: str):
        self.path, self.what = path, what

    def __enter__(self):
        return self

    def __exit__(self, kind, e, tb):
        import av

        if isinstance(e, (av.error.FFmpegError, OSError)):
            raise VideoError(f"{self.path}: {self.what} ({_reason(e)})") from None
        return False


def pick(candidates: list[str], available: set[str]) -> str | None:
    return next((c for c in candidates if c in available), None)


class Writer:
    """The output container: one video stream (frames with the input's pts and time base) and the
    input's audio streams, copied or re-encoded."""

    def __init__(self, tmp: Path, final: Path, reader: Reader, audio_streams, crf: int | None):
        av = self.av = import_av()
        self.final, self.notes, self.audio_notes = final, [], []
        fmt = VIDEO_EXTENSIONS.get(final.suffix.lower())
        if fmt is None:
            raise VideoError(f"{final}: not a video suffix ({', '.join(VIDEO_EXTENSIONS)})")
        self.container = av.open(str(tmp), "w", format=fmt)
        candidates = VIDEO_CODECS.get(fmt, H264_FIRST)
        self.codec = pick(candidates, av.codecs_available)
        if self.codec is None:
            raise VideoError(f"{final}: this PyAV build has none of the encoders {', '.join(candidates)}")
        if self.codec != candidates[0]:
            self.notes.append(f"{candidates[0]} is not in this PyAV build: encoded with {self.codec}")
        self.size = reader.size
        self.stream = self._video_stream(reader, crf)
        self.audio_streams = {s.index: self._audio_stream(s) for s in audio_streams}
        self.last_pts = None

    def _video_stream(self, reader: Reader, crf: int | None):
        w, h = self.size
        # yuv420p holds even sizes only: pad by repeating the last row/column (see README)
        even = (w + w % 2, h + h % 2)
        if even != (w, h):
            self.notes.append(f"{w}x{h} padded to {even[0]}x{even[1]}: yuv420p needs even sizes")
        stream = self.container.add_stream(self.codec, rate=reader.rate)
        stream.width, stream.height, stream.pix_fmt = *even, "yuv420p"
        # the input's time base, so every pts is kept exactly (29.97 fps, variable frame rates)
        stream.time_base = stream.codec_context.time_base = reader.time_base
        if self.codec in CRF_DEFAULTS:
            stream.options = {"crf": str(CRF_DEFAULTS[self.codec] if crf is None else crf)}
            if self.codec.startswith("libvpx"):
                stream.options["b"] = "0"  # constant quality, no bit-rate cap
        else:  # no crf: a generous bit rate (about 0.2 bits per pixel per frame)
            stream.bit_rate = int(even[0] * even[1] * float(reader.rate) * 0.2)
        return stream

    def _audio_stream(self, template):
        name = template.codec_context.name
        if name in self.container.supported_codecs:
            self.audio_notes.append(f"copied {name}")
            return self.container.add_stream_from_template(template), None
        codec = pick([c for c in AUDIO_CODECS if c in self.container.supported_codecs or
                      c.removeprefix("lib") in self.container.supported_codecs], self.av.codecs_available)
        if codec is None:
            raise VideoError(f"{self.final}: this container cannot hold {name} audio, and no encoder for it is available")
        self.audio_notes.append(f"re-encoded {name} to {codec.removeprefix('lib')}")
        stream = self.container.add_stream(codec, rate=template.rate, layout=template.layout.name)
        return stream, template

    def audio(self, packet) -> None:
        """An input audio packet (None at the end): copied, or decoded and re-encoded."""
        targets = self.audio_streams.items() if packet is None else [(packet.stream.index, self.audio_streams[packet.stream.index])]
        for _, (stream, template) in targets:
            if template is None:  # copied
                if packet is not None and packet.dts is not None:
                    packet.stream = stream
                    self.container.mux(packet)
                continue
            for frame in (packet.decode() if packet is not None else [None]):
                self.container.mux(stream.encode(frame))

    def write(self, frame: np.ndarray, pts: int) -> None:
        # encoders refuse a pts that does not increase (a damaged file's repeats): nudge it on
        pts = self.last_pts + 1 if self.last_pts is not None and pts <= self.last_pts else pts
        self.last_pts = pts
        w, h = self.stream.width, self.stream.height
        if frame.shape[:2] != (h, w):
            frame = np.pad(frame, ((0, h - frame.shape[0]), (0, w - frame.shape[1]), (0, 0)), mode="edge")
        video_frame = self.av.VideoFrame.from_ndarray(frame, format="rgb24")
        video_frame.pts, video_frame.time_base = pts, self.stream.codec_context.time_base
        self.container.mux(self.stream.encode(video_frame))

    def close(self) -> None:
        self.container.mux(self.stream.encode(None))
        self.container.close()

    def __enter__(self):
        return self

    def __exit__(self, kind, *exc):
        if kind is not None:  # free FFmpeg's file and buffers now; the partial file is deleted anyway
            with contextlib.suppress(Exception):
                self.container.close()
        return False
