"""Video benchmark: frames/s of the video job, and its flicker (Lai et al.'s warping error) plain vs
stabilised, with the style judges' scores of both, on a photo panned and zoomed into a clip.

    python -m bench.video --photo ../shared/data/photos/chicago.jpg --styles ../shared/data/styles \
        --seconds 2 -o bench/results --strip video_strip.jpg

Each method stylises the clip once, stabilised (timed); the plain run replays the same stylised
frames, so the two differ only by the stabilisation. AdaIN also runs with its content statistics
smoothed over time (timed separately). Writes DATE-video-SIZE-cpu.json and .md.

`nst-fast eval --video CLIP` runs the same measurement (`evaluate_clip`) on a user's clip.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from nst_fast.clips import NTSC, pan_frames, write_clip
from nst_fast.fileio import atomic_path
from nst_fast.images import load_image
from nst_fast.video import Reader, VideoOptions, stylize_video

STYLE = "starry_night"


class Recorded:
    """A stylize_batch that records what it returns (and the seconds it took), or replays it."""

    def __init__(self, stylize_batch):
        self.stylize_batch, self.outputs, self.seconds, self.replay = stylize_batch, [], 0.0, None

    def __call__(self, frames):
        if self.replay is not None:
            return [self.outputs[next(self.replay)] for _ in frames]
        start = time.perf_counter()
        out = self.stylize_batch(frames)
        self.seconds += time.perf_counter() - start
        self.outputs += out
        return out

    def replaying(self):
        self.replay = iter(range(len(self.outputs)))
        return self


def decode(path: Path, size: tuple[int, int]):
    """The frames of `path`, cropped to `size` (undoing the encoder's padding to even sizes)."""
    import av

    w, h = size
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            yield frame.to_ndarray(format="rgb24")[:h, :w]


def input_frames(clip: Path, max_size: int | None):
    """The input frames as the video job sees them: upright, downscaled to `max_size`."""
    reader = Reader(clip, max_size)
    with reader.open() as container:
        yield from (frame for frame, _ in reader.frames(container, lambda packet: None))


def style_scores(frames, judges, truth: int, every: int) -> dict:
    """Mean rank of the true style (1 best) and mean distance to it, per judge, over every
    `every`-th frame."""
    from bench.judges import rank_of

    sampled = [f for i, f in enumerate(frames) if i % every == 0]
    scores = {}
    for judge in judges:
        distances = [judge.distances(f) for f in sampled]
        scores[judge.name] = {"rank": float(np.mean([rank_of(d, truth) for d in distances])),
                              "distance": float(np.mean([d[truth] for d in distances]))}
    return scores


def stylizers(methods: list[str], backend: str = "torch", precision: str = "fp32"):
    """(method, Stylizer) with the bundled STYLE on the CPU, untiled; torch FP32 unless told
    (`auto`: the engine `nst-fast run` would pick here)."""
    from nst_fast.api import Stylizer

    for method in methods:
        yield method, Stylizer(STYLE, method=method, backend=backend, device="cpu", precision=precision, tile_size=0)


def variants(method: str, stylizer, options: dict, smoothed: bool = True):
    """(name, stylize_batch, options, statistics hook) to run, in order: the plain run replays
    the stabilised run's stylised frames."""
    from nst_fast.content_stats import AdaINRunnerStatistics

    recorded = Recorded(stylizer.stylize_batch)
    yield "stabilised", recorded, VideoOptions(**options), None
    yield "plain", recorded.replaying(), VideoOptions(**{**options, "stabilize": False}), None
    if method == "adain" and smoothed:
        yield "stabilised + smoothed statistics", stylizer.stylize_batch, VideoOptions(**options), \
            AdaINRunnerStatistics(stylizer.runner)


def evaluate_clip(clip: Path, work: Path, stylizers, judges, truth: int, *, window: range, batch_size: int = 4,
                  judge_every: int = 10, flow_scale: float = 0.5, max_size: int | None = None,
                  smoothed: bool = True, restore_detail: bool = True) -> tuple[list[dict], dict]:
    """Stylise `clip` with each (method, Stylizer), stabilised and plain (and AdaIN with smoothed
    statistics where `smoothed`), into `work`; one row per variant: frames/s, warping error, the
    judges' scores of the true style (index `truth`), PSNR against plain. Also the frames of
    `window` per (method, variant), for a contact strip."""
    from nst_fast.metrics import psnr
    from nst_fast.temporal import warping_error

    options = dict(batch_size=batch_size, flow_scale=flow_scale, max_size=max_size, stabilize=True,
                   restore_detail=restore_detail)
    size = Reader(clip, max_size).size  # the outputs' frames, less the encoder's padding
    rows, strips = [], {}
    for method, stylizer in stylizers:
        with stylizer:
            outputs = {}
            for name, stylize, opts, hook in variants(method, stylizer, options, smoothed):
                out = outputs[name] = work / f"{method}-{len(outputs)}.mp4"
                result = stylize_video(clip, out, stylize, opts, hook)
                # the plain run's stylisation happened during the stabilised run: add its time
                seconds = result.seconds + (stylize.seconds if name == "plain" else 0.0)
                rows.append({"method": method, "engine": str(stylizer.backend), "variant": name, "frames": result.frames, "seconds": round(seconds, 2),
                             "frames_per_s": round(result.frames / seconds, 4), "codec": result.codec,
                             "audio": result.audio, "cuts": result.cuts,
                             "warping_error": round(warping_error(input_frames(clip, max_size), decode(out, size)), 6),
                             "style": style_scores(decode(out, size), judges, truth, judge_every)})
                strips[(method, name)] = [f for i, f in enumerate(decode(out, size)) if i in window]
                print(json.dumps(rows[-1]), flush=True)
            for row in rows[-len(outputs):]:
                if row["variant"] != "plain":
                    pairs = zip(decode(outputs["plain"], size), decode(outputs[row["variant"]], size))
                    row["psnr_vs_plain_db"] = round(float(np.mean([psnr(a, b) for a, b in pairs])), 2)
    return rows, strips


def contact_strip(strips: dict, path: Path, window: range) -> None:
    """Rows: each (method, variant); columns: the consecutive frames of `window`, centre crops."""
    from nst_fast.sheet import contact_sheet

    rows, labels = [], []
    for (method, name), frames in strips.items():
        h, w = frames[0].shape[:2]
        side = min(h, w) // 2
        y, x = (h - side) // 2, (w - side) // 2
        rows.append([f[y:y + side, x:x + side] for f in frames])
        labels.append(f"{method}, {name}")
    contact_sheet(rows, path, labels, [f"frame {i}" for i in window], cell=200)


def markdown(report: dict) -> str:
    env, rows = report["environment"], report["results"]
    lines = [f"# Video: {report['clip']}", "",
             f"CPU: {env['cpu']} ({env['cores']} cores), torch {env['versions']['torch']}, commit {env['git_commit']}, "
             f"{env['date']}. Batch {report['batch_size']}, stabiliser's flow at "
             f"{report.get('flow_scale', 0.5):g} x the frame size; warping error of Lai et al. 2018 "
             "(DIS medium flow on the input frames, colours in [0, 1]); style judges: mean rank of the true "
             f"painting among {report['candidates']} (1 best), over every {report['judge_every']}th frame.", "",
             "| method | engine | style | variant | frames | s | frames/s | warping error | vs plain "
             "| PSNR vs plain (dB) | VGG rank | colour/texture rank |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    key = lambda r: (r["method"], r.get("style_name", STYLE))  # noqa: E731
    plain = {key(r): r["warping_error"] for r in rows if r["variant"] == "plain"}
    for r in rows:
        change = (r["warping_error"] / plain[key(r)] - 1) * 100 if plain.get(key(r)) else 0.0
        ranks = [r["style"][k]["rank"] for k in r["style"]]
        engine = r.get("engine", "torch on the CPU, FP32")  # reports before engines were named
        lines.append(f"| {r['method']} | {engine} | {key(r)[1]} | {r['variant']} | {r['frames']} | {r['seconds']} "
                     f"| {r['frames_per_s']:.3f} | {r['warping_error']:.5f} | {change:+.0f} % "
                     f"| {r.get('psnr_vs_plain_db', '')} | {ranks[0]:.2f} | {ranks[1]:.2f} |")
    return "\n".join(lines) + "\n"


def fitted_judges(paintings: dict[str, np.ndarray]) -> list:
    """Both style judges, fitted on the candidate paintings (name -> pixels)."""
    from bench.judges import ColourTexture, VGGStatistics
    from nst_fast.weights import vgg_weights

    judges = [VGGStatistics(vgg_weights().build("relu5_1")), ColourTexture()]
    for judge in judges:
        judge.fit(list(paintings.values()))
    return judges


def middle(frames: int, length: int = 6) -> range:
    """`length` consecutive frame numbers from the middle of a clip of `frames`."""
    start = max(0, frames // 2 - length // 2)
    return range(start, min(frames, start + length))


def report_for(clip: str, rows: list[dict], candidates: int, batch_size: int, judge_every: int,
               flow_scale: float) -> dict:
    from bench.harness import environment

    return {"clip": clip, "batch_size": batch_size, "flow_scale": flow_scale, "candidates": candidates,
            "judge_every": judge_every, "environment": environment("cpu"), "results": rows}


def write_report(report: dict, stem: Path) -> None:
    """STEM.json and STEM.md, atomically."""
    for suffix, text in ((".json", json.dumps(report, indent=2) + "\n"), (".md", markdown(report))):
        with atomic_path(stem.with_suffix(suffix)) as part:
            part.write_text(text)


def evaluate_video(clip: Path, styles_dir: Path, styles: list[str], methods: list[str], out: Path,
                   transformers: Path | None = None, max_size: int | None = None, batch_size: int = 4,
                   judge_every: int = 10) -> dict:
    """`nst-fast eval --video CLIP`: every (method, style) on torch FP32 (bench.evaluate's
    Stylizers), stabilised and plain, scored as `evaluate_clip` does. Writes OUT/video.json,
    OUT/video.md and OUT/video-strip.jpg (consecutive frames from the middle of the clip)."""
    from bench.evaluate import Setup, make_runner, style_files

    files = style_files(styles_dir)
    missing = [s for s in styles if s not in files]
    if missing:
        raise FileNotFoundError(f"{styles_dir}: no image for style(s) {', '.join(missing)} (there: {', '.join(files)})")
    paintings = {name: load_image(path, 512) for name, path in files.items()}
    judges = fitted_judges(paintings)
    setup = Setup(Path(), styles_dir, styles, out, tuple(methods), transformers=transformers)
    reader = Reader(clip, max_size)
    window = middle(reader.expected or judge_every)
    rows, strips = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for style in styles:
            chosen = [(m, make_runner(setup, m, style)) for m in methods]
            found = [(m, stylizer) for m, stylizer in chosen if stylizer is not None]
            style_rows, style_strips = evaluate_clip(clip, Path(tmp), found, judges, list(paintings).index(style),
                                                     window=window, batch_size=batch_size, judge_every=judge_every,
                                                     max_size=max_size, smoothed=False)
            rows += [{**row, "style_name": style} for row in style_rows]
            strips.update({(f"{m} {style}", name): frames for (m, name), frames in style_strips.items()})
    w, h = reader.size
    report = report_for(f"{clip.name}, {w}x{h}", rows, len(paintings), batch_size, judge_every,
                        VideoOptions.flow_scale)
    write_report(report, out / "video")
    if strips:
        contact_strip(strips, out / "video-strip.jpg", window)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path, required=True)
    parser.add_argument("--styles", type=Path, required=True, help=f"paintings for the style judges, with {STYLE}.jpg")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--methods", nargs="+", default=["adain", "transformer"])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--flow-scale", type=float, default=VideoOptions.flow_scale,
                        help="stabiliser's flow resolution, a fraction of the frame size")
    parser.add_argument("--no-restore-detail", dest="restore_detail", action="store_false",
                        help="stabilise without giving the blend the fresh frame's detail energy back")
    parser.add_argument("--judge-every", type=int, default=10)
    parser.add_argument("--backend", default="torch", help="auto: the engine `nst-fast run` picks (default: torch)")
    parser.add_argument("--precision", default="fp32", help="auto|fp32|bf16|... (default: fp32)")
    parser.add_argument("--no-smoothed", dest="smoothed", action="store_false",
                        help="leave out AdaIN's run with its content statistics smoothed (a third stylisation)")
    parser.add_argument("--strip", type=Path)
    parser.add_argument("-o", "--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()

    size = tuple(int(v) for v in args.size.split("x"))
    count = round(args.seconds * NTSC)
    paintings = {p.stem: load_image(p, 512) for p in sorted(args.styles.glob("*.jpg"))}
    judges = fitted_judges(paintings)
    window = middle(count)
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        write_clip(clip, pan_frames(load_image(args.photo), size, count))
        rows, strips = evaluate_clip(clip, Path(tmp), stylizers(args.methods, args.backend, args.precision), judges,
                                     list(paintings).index(STYLE), window=window, batch_size=args.batch_size,
                                     judge_every=args.judge_every, flow_scale=args.flow_scale,
                                     restore_detail=args.restore_detail, smoothed=args.smoothed)
    report = report_for(f"{args.photo.name} panned and zoomed, {size[0]}x{size[1]}, {count} frames at "
                        "30000/1001 fps with a 440 Hz AAC tone", rows, len(paintings), args.batch_size,
                        args.judge_every, args.flow_scale)
    report["restore_detail"] = args.restore_detail
    report["engine"] = {"backend": args.backend, "precision": args.precision}
    flow = "" if args.flow_scale == VideoOptions.flow_scale else f"-flow{args.flow_scale:g}"
    flow += "" if args.restore_detail else "-norestore"
    write_report(report, args.out / f"{time.strftime('%Y-%m-%d')}-video-{size[1]}p{flow}-cpu")
    if args.strip:
        contact_strip(strips, args.strip, window)
    print(markdown(report))


if __name__ == "__main__":
    main()
