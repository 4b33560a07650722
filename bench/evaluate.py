"""`nst-fast eval`: how good are the outputs, measured the same way for every method.

Every method stylises the same (photo, style) pairs at the same size, on torch FP32 on the CPU
(the reference every backend is compared with). Outputs are kept under OUT/outputs/<method>/ with
the weights they came from, so a rerun only computes what is missing or stale (Gatys costs minutes
per image). Then, per output:

- style identification by two judges (bench.judges) among every painting in the styles folder;
- HED edge F-score against the photo;
- the Gatys objective's content and style terms, quoted as a ratio to Gatys' own result;

and, for each other backend and precision here, the PSNR of its outputs against torch FP32.
The "photo" rows score the unstylised photo: chance level for the judges, 1 for the edges.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from nst_fast.backends import Backend, candidates, precisions
from nst_fast.errors import NSTError
from nst_fast.fileio import atomic_path
from nst_fast.images import image_files, load_image, save_image
from nst_fast.metrics import psnr
from nst_fast.weights import sha256_file

from export.pipeline import json_safe

from .harness import environment
from .judges import ColourTexture, GatysLosses, VGGStatistics, edge_fscore, edge_map, grid_score, rank_of

METHODS = ("gatys", "adain", "transformer")
REFERENCE = Backend("torch", "cpu", False)
SHEET_ROWS = 6


@dataclass
class Setup:
    content: Path  # folder of photos
    styles_dir: Path  # every image here is a candidate for the judges
    styles: list[str]  # the ones stylised with (file stems in styles_dir)
    out: Path
    methods: tuple[str, ...] = METHODS
    size: int = 256  # long side of the photos, px
    limit: int = 6  # photos
    gatys_steps: int = 300
    transformers: Path | None = None  # folder of <style>.safetensors (default: the bundled ones)
    fidelity: bool = True
    threads: int | None = None
    photo_names: list[str] = field(default_factory=list)
    gatys_from: Path | None = None  # an earlier eval.json whose Gatys rows stand in for running Gatys
    decoder: Path | None = None  # AdaIN decoder weights (default: the bundled one)


def style_files(styles_dir: Path) -> dict[str, Path]:
    return {p.stem: p for p in image_files(styles_dir, recursive=False)}


def transformer_file(setup: Setup, style: str) -> Path | None:
    from nst_fast.graphs import TRANSFORMERS

    path = (setup.transformers or TRANSFORMERS) / f"{style}.safetensors"
    return path if path.is_file() else None


def method_source(setup: Setup, method: str, style: str) -> dict:
    """What an output depends on besides the photo: a cached output with another source is stale."""
    common = {"size": setup.size, "style_sha256": sha256_file(style_files(setup.styles_dir)[style])}
    if method == "gatys":
        return {**common, "steps": setup.gatys_steps}
    if method == "adain":
        from nst_fast.models import DEFAULT_DECODER

        return {**common, "decoder_sha256": sha256_file(setup.decoder or DEFAULT_DECODER), "style_colors": True}
    path = transformer_file(setup, style)
    return {**common, "weights_sha256": sha256_file(path) if path else None}


def make_runner(setup: Setup, method: str, style: str, backend: Backend = REFERENCE):
    """The method's Stylizer for one style (untiled, at the photos' size), or None where the method
    has no model for it."""
    from nst_fast.api import Stylizer

    if method == "gatys":
        return Stylizer(style_files(setup.styles_dir)[style], method="gatys", steps=setup.gatys_steps, tile_size=0)
    engine = dict(backend=backend.kind, device=backend.device, precision="fp16" if backend.half else "fp32",
                  tile_size=0)
    if method == "adain":
        return Stylizer(style_files(setup.styles_dir)[style], model=setup.decoder, **engine)
    model = transformer_file(setup, style)
    return None if model is None else Stylizer(style, method="transformer", model=model, **engine)


class OutputStore:
    """OUT/outputs/<method>/<style>/<photo>.png, with index.json: the source each style's outputs
    came from and the seconds each took."""

    def __init__(self, root: Path, method: str):
        self.root = root / "outputs" / method
        self.index_path = self.root / "index.json"
        self.index = json.loads(self.index_path.read_text()) if self.index_path.is_file() else {}

    def path(self, style: str, photo: str) -> Path:
        return self.root / style / f"{photo}.png"

    def get(self, style: str, photo: str, source: dict) -> np.ndarray | None:
        entry = self.index.get(style)
        if entry is None or entry["source"] != source or not self.path(style, photo).is_file():
            return None
        try:
            return load_image(self.path(style, photo))
        except Exception:  # a damaged cached output is computed again
            return None

    def put(self, style: str, photo: str, source: dict, image: np.ndarray, seconds: float) -> None:
        entry = self.index.get(style)
        if entry is None or entry["source"] != source:
            entry = self.index[style] = {"source": source, "seconds": {}}
        save_image(image, self.path(style, photo))  # atomic
        entry["seconds"][photo] = seconds
        with atomic_path(self.index_path) as part:
            part.write_text(json.dumps(self.index, indent=1))

    def seconds(self, style: str, photo: str) -> float | None:
        return self.index.get(style, {}).get("seconds", {}).get(photo)


def load_photos(setup: Setup) -> dict[str, np.ndarray]:
    files = image_files(setup.content)[: setup.limit]
    if not files:
        raise FileNotFoundError(f"{setup.content}: no photos in it")
    return {p.stem: load_image(p, setup.size) for p in files}


def stylize_all(setup: Setup, photos: dict[str, np.ndarray]) -> dict[str, dict[tuple[str, str], np.ndarray]]:
    """outputs[method][(style, photo)] on the reference backend, from the store where it is fresh."""
    outputs = {method: {} for method in setup.methods}
    stores = {method: OutputStore(setup.out, method) for method in setup.methods}
    todo = []
    for method, store in stores.items():
        for style in setup.styles:
            if method == "transformer" and transformer_file(setup, style) is None:
                continue
            source = method_source(setup, method, style)
            for name in photos:
                cached = store.get(style, name, source)
                if cached is not None:
                    outputs[method][style, name] = cached
                else:
                    todo.append((method, style, name, source))
    with tqdm(total=len(todo), desc="stylise", unit="image") as bar:
        for method, style in dict.fromkeys((m, s) for m, s, _, _ in todo):
            store = stores[method]
            with make_runner(setup, method, style) as runner:
                for m, s, name, source in todo:
                    if (m, s) != (method, style):
                        continue
                    bar.set_postfix_str(f"{method} {style} {name}")
                    t0 = time.perf_counter()
                    image = runner.stylize(photos[name])
                    store.put(style, name, source, image, time.perf_counter() - t0)
                    outputs[method][style, name] = image
                    bar.update(1)
    return outputs


def recorded_gatys_rows(setup: Setup, photos, candidates: list[str]) -> list[dict]:
    """The Gatys rows of an earlier report of the same setup, for every pair this run scores.

    Gatys costs about five minutes per pair on a 2-core CPU and depends only on the photo, the
    style, the size and the step budget, so comparing a new decoder need not run it again.
    """
    path = setup.gatys_from
    report = read_report(Path(path), ("setup", "rows", "candidates"))
    recorded, rows = report["setup"], [r for r in report["rows"] if r["method"] == "gatys"]
    for key in ("size", "gatys_steps"):
        if recorded[key] != getattr(setup, key):
            raise NSTError(f"{path}: recorded with {key} {recorded[key]}, this run uses {getattr(setup, key)}")
    if report["candidates"] != candidates:
        raise NSTError(f"{path}: its judges chose among other paintings ({', '.join(report['candidates'])})")
    by_pair = {(r["style"], r["photo"]): r for r in rows}
    missing = [f"{s}/{p}" for s in setup.styles for p in photos if (s, p) not in by_pair]
    if missing:
        raise NSTError(f"{path}: no Gatys result for {', '.join(missing)}")
    return [by_pair[s, p] for s in setup.styles for p in photos]


def score_outputs(setup: Setup, photos, styles, outputs) -> list[dict]:
    """One row per (method, style, photo): ranks by both judges, edge F-score, Gatys losses."""
    from nst_fast.hed import load_hed
    from nst_fast.weights import vgg_weights

    vgg = vgg_weights().build("relu5_1")
    judges = [VGGStatistics(vgg), ColourTexture()]
    names = list(styles)
    for judge in judges:
        judge.fit([styles[n] for n in names])
    hed, losses = load_hed(), GatysLosses(vgg)
    photo_edges = {name: edge_map(hed, image) for name, image in photos.items()}
    rows = []
    everything = {"photo": {(s, p): photos[p] for s in setup.styles for p in photos}, **outputs}
    total = sum(len(v) for v in everything.values())
    with tqdm(total=total, desc="score", unit="image") as bar:
        for method, results in everything.items():
            store = OutputStore(setup.out, method)
            for (style, photo), image in sorted(results.items()):
                truth = names.index(style)
                row = {"method": method, "style": style, "photo": photo,
                       "seconds": store.seconds(style, photo) if method != "photo" else None,
                       "edge_f": edge_fscore(photo_edges[photo], edge_map(hed, image)), "grid": grid_score(image),
                       **losses(image, photos[photo], styles[style])}
                for judge, key in zip(judges, ("rank_vgg", "rank_colour_texture")):
                    row[key] = rank_of(judge.distances(image), truth)
                rows.append(row)
                bar.update(1)
    return rows


def fidelity(setup: Setup, photos, outputs) -> list[dict]:
    """PSNR against torch FP32 of every other backend and precision this machine runs."""
    rows = []
    configs = []
    for kind, device, why_not in candidates():
        # OpenVINO: what this CPU has (FP32, BF16, INT8...); the others FP32 and FP16 (and torch's bf16)
        for precision in precisions(kind, device) if kind == "openvino" and not why_not else \
                ["fp32", "fp16"] + (["bf16"] if kind == "torch" and "bf16" in precisions(kind, device) else []):
            backend = Backend(kind, device, precision)
            if backend == REFERENCE:
                continue
            if backend == Backend("torch", "cpu", True):
                configs.append((backend, "torch's CPU FP16 kernels are 6-60x slower than FP32, no one would use them"))
            else:
                configs.append((backend, why_not))
    for backend, why in configs:
        row = {"backend": backend.kind, "device": backend.device, "precision": backend.precision}
        if why:
            if not any(r.get("skipped") == why and r["backend"] == backend.kind for r in rows):
                unavailable = not (backend.kind == "torch" and backend.device == "cpu")  # in neither precision
                rows.append({**row, "precision": "any" if unavailable else row["precision"], "skipped": why})
            continue
        for method in ("adain", "transformer"):
            if method not in setup.methods:
                continue
            values = []
            try:
                for style in setup.styles:
                    runner = make_runner(setup, method, style, backend)
                    if runner is None:
                        continue
                    with runner:
                        values += [psnr(outputs[method][style, name], runner.stylize(image)) for name, image in photos.items()]
            except NSTError as e:  # e.g. an INT8 graph refused by its validation: a result, not a crash
                rows.append({"method": method, **row, "skipped": str(e)})
                continue
            if values:
                rows.append({"method": method, **row, "n": len(values), "identical": int(np.isinf(values).sum()),
                             "psnr_min": min(values), "psnr_median": float(np.median(values))})  # inf where identical
    return rows


def summarise(rows: list[dict], k: int) -> list[dict]:
    """Per method: top-1 accuracy of both judges, mean edge F-score, seconds, and the Gatys
    objective's terms as median ratios to Gatys' result on the same pair."""
    gatys = {(r["style"], r["photo"]): r for r in rows if r["method"] == "gatys"}
    table = []
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        entry = {"method": method, "pairs": len(mine), "candidates": k,
                 "top1_vgg": float(np.mean([r["rank_vgg"] == 1 for r in mine])),
                 "top1_colour_texture": float(np.mean([r["rank_colour_texture"] == 1 for r in mine])),
                 "edge_f": float(np.mean([r["edge_f"] for r in mine])),
                 "content_loss": float(np.median([r["content_loss"] for r in mine])),
                 "style_loss": float(np.median([r["style_loss"] for r in mine]))}
        grids = [r["grid"] for r in mine if "grid" in r]  # not in rows recorded before the measure
        entry["grid"] = float(np.median(grids)) if grids else None
        seconds = [r["seconds"] for r in mine if r["seconds"] is not None]
        entry["seconds_per_image"] = float(np.median(seconds)) if seconds else None
        paired = [(r, gatys[r["style"], r["photo"]]) for r in mine if (r["style"], r["photo"]) in gatys]
        if paired and method != "gatys":
            for term in ("content_loss", "style_loss"):
                entry[f"{term}_vs_gatys"] = float(np.median([r[term] / g[term] for r, g in paired]))
        table.append(entry)
    return table


def contact_sheets(setup: Setup, photos, styles, outputs) -> list[Path]:
    from nst_fast.sheet import contact_sheet

    written = []
    names = list(photos)[:SHEET_ROWS]
    for method, results in outputs.items():
        used = [s for s in setup.styles if any((s, n) in results for n in names)]
        if not used:
            continue
        blank = np.full((8, 8, 3), 235, np.uint8)
        rows = [[blank, *(styles[s] for s in used)]]
        rows += [[photos[n], *(results.get((s, n), blank) for s in used)] for n in names]
        path = setup.out / f"sheet-{method}.jpg"
        contact_sheet(rows, path, labels=["style", *names], column_titles=["photo", *used], cell=160)
        written.append(path)
    return written


def run(setup: Setup) -> dict:
    import torch

    if setup.threads:
        torch.set_num_threads(setup.threads)
    files = style_files(setup.styles_dir)
    missing = [s for s in setup.styles if s not in files]
    if missing:
        raise FileNotFoundError(f"{setup.styles_dir}: no image for style(s) {', '.join(missing)} "
                                f"(there: {', '.join(files)})")
    photos = load_photos(setup)
    styles = {name: load_image(path, setup.size) for name, path in files.items()}
    if setup.gatys_from and "gatys" in setup.methods:
        raise NSTError("--gatys-from stands in for running Gatys: leave gatys out of the methods")
    recorded = recorded_gatys_rows(setup, photos, list(styles)) if setup.gatys_from else []
    outputs = stylize_all(setup, photos)
    rows = score_outputs(setup, photos, styles, outputs) + recorded
    report = {"setup": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(setup).items()},
              "environment": environment("cpu"), "photos": list(photos), "candidates": list(styles),
              "summary": summarise(rows, len(styles)), "rows": rows,
              "fidelity": fidelity(setup, photos, outputs) if setup.fidelity else []}
    report["sheets"] = [str(p) for p in contact_sheets(setup, photos, styles, outputs)]
    write_report(report, setup.out)
    return report


def read_report(path: Path, keys: tuple[str, ...] = ("rows",)) -> dict:
    """An eval.json written by `write_report`, with at least `keys`; anything else is an NSTError naming the file."""
    try:
        report = json.loads(path.read_text())
        for key in keys:
            report[key]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise NSTError(f"{path}: not an `nst-fast eval` report ({type(e).__name__}: {e})") from None
    return report


def write_report(report: dict, out: Path) -> None:
    with atomic_path(out / "eval.json") as part:
        part.write_text(json.dumps(json_safe(report), indent=1, allow_nan=False, default=str) + "\n")
    with atomic_path(out / "eval.md") as part:
        part.write_text(markdown(report))


def markdown(report: dict) -> str:
    setup, k = report["setup"], len(report["candidates"])
    fmt = lambda v, spec: "" if v is None else format(v, spec)  # noqa: E731
    recorded = f" (recorded in `{setup['gatys_from']}`, not run again)" if setup.get("gatys_from") else ""
    lines = [f"# Quality evaluation ({report['environment']['date']})", "",
             f"{len(report['photos'])} photos from `{setup['content']}` at {setup['size']} px (long side) x styles "
             f"{', '.join(setup['styles'])}; Gatys {setup['gatys_steps']} L-BFGS steps{recorded}; every output on torch FP32, CPU. "
             f"Style identification: top-1 among the {k} paintings of `{setup['styles_dir']}` (chance {1 / k:.1%}). "
             "Losses are the Gatys objective's unweighted terms (content relu4_2, Gram style relu1_1-relu5_1); "
             "ratios are medians over the same pairs, method / Gatys. Grid: median share of the fine detail "
             "that repeats every 8 px (`bench.judges.grid_score`; the photos' own value is the floor).", "",
             "| method | pairs | top-1 VGG statistics | top-1 Lab + LBP | edge F-score | content loss vs Gatys "
             "| style loss vs Gatys | grid | s/image (torch CPU) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for e in report["summary"]:
        lines.append(f"| {e['method']} | {e['pairs']} | {e['top1_vgg']:.1%} | {e['top1_colour_texture']:.1%} "
                     f"| {e['edge_f']:.3f} | {fmt(e.get('content_loss_vs_gatys'), '.2f')} "
                     f"| {fmt(e.get('style_loss_vs_gatys'), '.2f')} | {fmt(e.get('grid'), '.3f')} "
                     f"| {fmt(e['seconds_per_image'], '.2f')} |")
    lines += ["", "Per style (top-1 VGG / Lab + LBP, edge F-score):", "",
              "| method | " + " | ".join(setup["styles"]) + " |", "|---|" + "---|" * len(setup["styles"])]
    for method in dict.fromkeys(r["method"] for r in report["rows"]):
        cells = []
        for style in setup["styles"]:
            mine = [r for r in report["rows"] if r["method"] == method and r["style"] == style]
            cells.append("" if not mine else
                         f"{np.mean([r['rank_vgg'] == 1 for r in mine]):.0%} / "
                         f"{np.mean([r['rank_colour_texture'] == 1 for r in mine]):.0%}, "
                         f"{np.mean([r['edge_f'] for r in mine]):.2f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    if report["fidelity"]:
        lines += ["", "Backends against torch FP32 on the CPU (same pairs):", "",
                  "| method | backend | precision | n | identical | PSNR min (dB) | PSNR median (dB) |",
                  "|---|---|---|---|---|---|---|"]
        for r in report["fidelity"]:
            if "skipped" in r:
                lines.append(f"| | {r['backend']} {r['device']} | {r['precision']} | | | not run: {r['skipped']} | |")
            else:
                lines.append(f"| {r['method']} | {r['backend']} {r['device']} | {r['precision']} | {r['n']} | {r['identical']} "
                             f"| {r['psnr_min']:.1f} | {r['psnr_median']:.1f} |")
    lines += ["", *(f"![{Path(p).stem}]({Path(p).name})" for p in report["sheets"]), ""]
    return "\n".join(lines)
