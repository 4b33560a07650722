"""Two `nst-fast eval` reports of the same photos and styles, one method, pair by pair: is B better than A?

    python -m bench.compare runs/eval-old/eval.json runs/eval-new/eval.json [--method adain] [-o compare.md]

The eval's "style loss vs Gatys" is a median over few pairs (Gatys costs minutes per pair), and one pair
moves a judge by several percent, so two decoders a few hundred training steps apart are hard to tell
apart by it. Here every pair both reports share is compared with itself: the median over pairs of B's
style (and content) loss over A's, how many pairs B lowers, and both judges' top-1 rates, the edge
F-score and the grid score of A and B on exactly those pairs; per style and over all. No Gatys needed,
so 20 photos x 3 styles take about a minute per decoder.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from nst_fast.errors import NSTError
from nst_fast.fileio import atomic_path

from .evaluate import read_report, summarise


def pairs(report: dict, method: str) -> dict[tuple[str, str], dict]:
    """The report's rows of `method`, by (style, photo)."""
    return {(r["style"], r["photo"]): r for r in report["rows"] if r["method"] == method}


def compare(a: dict, b: dict, method: str = "adain") -> list[dict]:
    """One entry per style of the pairs both reports have, then one over all of them ("all")."""
    rows_a, rows_b = pairs(a, method), pairs(b, method)
    shared = sorted(set(rows_a) & set(rows_b))
    if not shared:
        raise ValueError(f"the two reports share no ({method}, style, photo) pair")
    styles = list(dict.fromkeys(style for style, _ in shared))
    entries = []
    for style in styles + ["all"]:
        keys = [k for k in shared if style in ("all", k[0])]
        ra, rb = [rows_a[k] for k in keys], [rows_b[k] for k in keys]
        ratio = lambda term: [y[term] / x[term] for x, y in zip(ra, rb) if x[term] > 0]  # noqa: E731
        style_ratio = ratio("style_loss")
        entry = {"style": style, "pairs": len(keys),
                 "style_loss_b_over_a": float(np.median(style_ratio)),
                 "b_lower_style_loss": int(sum(r < 1 for r in style_ratio)),
                 "content_loss_b_over_a": float(np.median(ratio("content_loss")))}
        for name, rows in (("a", ra), ("b", rb)):
            judged = summarise(rows, k=None)[0]  # the eval's own judge and edge summary, on these pairs
            entry |= {f"{key}_{name}": judged[key] for key in ("top1_vgg", "top1_colour_texture", "edge_f", "grid")}
        entries.append(entry)
    return entries


def markdown(entries: list[dict], a: str, b: str, method: str) -> str:
    pct = lambda v: f"{100 * v:.0f} %"  # noqa: E731
    grid = lambda v: "" if v is None else f"{v:.3f}"  # noqa: E731
    lines = [f"# {method}: B = `{b}` against A = `{a}`, pair by pair", "",
             "| style | pairs | style loss B / A (median) | B lower on | content loss B / A | top-1 VGG A → B "
             "| top-1 Lab+LBP A → B | edge F A → B | grid A → B |",
             "|---|---|---|---|---|---|---|---|---|"]
    for e in entries:
        lines.append(f"| {e['style']} | {e['pairs']} | {e['style_loss_b_over_a']:.3f} | {e['b_lower_style_loss']} "
                     f"| {e['content_loss_b_over_a']:.3f} | {pct(e['top1_vgg_a'])} → {pct(e['top1_vgg_b'])} "
                     f"| {pct(e['top1_colour_texture_a'])} → {pct(e['top1_colour_texture_b'])} "
                     f"| {e['edge_f_a']:.3f} → {e['edge_f_b']:.3f} | {grid(e['grid_a'])} → {grid(e['grid_b'])} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="eval.json of the reference (e.g. the bundled decoder)")
    parser.add_argument("b", type=Path, help="eval.json of the candidate")
    parser.add_argument("--method", default="adain", help="method whose rows are compared (default: adain)")
    parser.add_argument("-o", "--output", type=Path, help="also write the table here (Markdown)")
    args = parser.parse_args(argv)
    try:
        a, b = read_report(args.a), read_report(args.b)
    except NSTError as e:
        raise SystemExit(str(e)) from None
    try:
        entries = compare(a, b, args.method)
    except ValueError as e:
        raise SystemExit(f"{args.a}, {args.b}: {e}") from None
    text = markdown(entries, str(args.a), str(args.b), args.method)
    if args.output:
        with atomic_path(args.output) as tmp:
            Path(tmp).write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
