"""Video benchmark: frames/s of the video job, and its flicker (Lai et al.'s warping error) plain vs
stabilised, with the style judges' scores of both, on a photo panned and zoomed into a clip.

    python -m bench.video --photo ../shared/data/photos/chicago.jpg --styles ../shared/data/styles \
        --seconds 2 -o bench/results --strip video_strip.jpg

Each method stylises the clip once, stabilised (timed); the plain run replays the same stylised
frames, so the two differ only by the stabilisation. AdaIN also runs with its content statistics
smoothed over time (timed separately). Writes DATE-video-SIZE-cpu.json and .md.
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
from nst_fast.video import VideoOptions, runner_batch, stylize_video

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


def runners(methods: list[str]):
    from nst_fast.methods import adain_runner, transformer_runner

    for method in methods:
        yield method, adain_runner([STYLE]) if method == "adain" else transformer_runner(STYLE)


def variants(method: str, runner, options: dict):
    """(name, stylize_batch, options, statistics hook) to run, in order: the plain run replays
    the stabilised run's stylised frames."""
    from nst_fast.content_stats import AdaINRunnerStatistics

    recorded = Recorded(runner_batch(runner))
    yield "stabilised", recorded, VideoOptions(**options), None
    yield "plain", recorded.replaying(), VideoOptions(stabilize=False, **options), None
    if method == "adain":
        yield "stabilised + smoothed statistics", runner_batch(runner), VideoOptions(**options), \
            AdaINRunnerStatistics(runner)


def measure(clip: Path, work: Path, size, judges, truth, args, window: range) -> tuple[list[dict], dict]:
    from bench.judges import psnr
    from nst_fast.temporal import warping_error

    rows, strips = [], {}
    for method, runner in runners(args.methods):
        with runner:
            outputs = {}
            for name, stylize, options, hook in variants(method, runner, dict(batch_size=args.batch_size)):
                out = outputs[name] = work / f"{method}-{len(outputs)}.mp4"
                result = stylize_video(clip, out, stylize, options, hook)
                # the plain run's stylisation happened during the stabilised run: add its time
                seconds = result.seconds + (stylize.seconds if name == "plain" else 0.0)
                rows.append({"method": method, "variant": name, "frames": result.frames, "seconds": round(seconds, 2),
                             "frames_per_s": round(result.frames / seconds, 4), "codec": result.codec,
                             "audio": result.audio, "cuts": result.cuts,
                             "warping_error": round(warping_error(decode(clip, size), decode(out, size)), 6),
                             "style": style_scores(decode(out, size), judges, truth, args.judge_every)})
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
             f"{env['date']}. Torch runner, batch {report['batch_size']}; warping error of Lai et al. 2018 "
             "(DIS medium flow on the input frames, colours in [0, 1]); style judges: mean rank of the true "
             f"painting among {report['candidates']} (1 best), over every {report['judge_every']}th frame.", "",
             "| method | variant | frames | s | frames/s | warping error | vs plain | PSNR vs plain (dB) "
             "| VGG rank | colour/texture rank |", "|---|---|---|---|---|---|---|---|---|---|"]
    plain = {r["method"]: r["warping_error"] for r in rows if r["variant"] == "plain"}
    for r in rows:
        change = (r["warping_error"] / plain[r["method"]] - 1) * 100
        ranks = [r["style"][k]["rank"] for k in r["style"]]
        lines.append(f"| {r['method']} | {r['variant']} | {r['frames']} | {r['seconds']} | {r['frames_per_s']:.3f} "
                     f"| {r['warping_error']:.5f} | {change:+.0f} % | {r.get('psnr_vs_plain_db', '')} "
                     f"| {ranks[0]:.2f} | {ranks[1]:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    from bench.harness import environment
    from bench.judges import ColourTexture, VGGStatistics
    from nst_fast.weights import vgg_weights

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photo", type=Path, required=True)
    parser.add_argument("--styles", type=Path, required=True, help=f"paintings for the style judges, with {STYLE}.jpg")
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--methods", nargs="+", default=["adain", "transformer"])
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--judge-every", type=int, default=10)
    parser.add_argument("--strip", type=Path)
    parser.add_argument("-o", "--out", type=Path, default=Path("bench/results"))
    args = parser.parse_args()

    size = tuple(int(v) for v in args.size.split("x"))
    count = round(args.seconds * NTSC)
    paintings = sorted(args.styles.glob("*.jpg"))
    judges = [VGGStatistics(vgg_weights().build("relu5_1")), ColourTexture()]
    for judge in judges:
        judge.fit([load_image(p, 512) for p in paintings])
    truth = [p.stem for p in paintings].index(STYLE)
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        write_clip(clip, pan_frames(load_image(args.photo), size, count))
        window = range(count // 2, count // 2 + 6)
        rows, strips = measure(clip, Path(tmp), size, judges, truth, args, window)
    report = {"clip": f"{args.photo.name} panned and zoomed, {size[0]}x{size[1]}, {count} frames at 30000/1001 fps "
                      "with a 440 Hz AAC tone",
              "batch_size": args.batch_size, "candidates": len(paintings), "judge_every": args.judge_every,
              "environment": environment("cpu"), "results": rows}
    stem = args.out / f"{time.strftime('%Y-%m-%d')}-video-{size[1]}p-cpu"
    for suffix, text in ((".json", json.dumps(report, indent=2) + "\n"), (".md", markdown(report))):
        with atomic_path(stem.with_suffix(suffix)) as part:
            part.write_text(text)
    if args.strip:
        contact_strip(strips, args.strip, window)
    print(markdown(report))


if __name__ == "__main__":
    main()
