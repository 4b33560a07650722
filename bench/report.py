"""Benchmark results as JSON (everything), a Markdown table (what people read) and a PNG plot
(images/s per configuration and size, log scale, Gatys included)."""
from __future__ import annotations

import json
from pathlib import Path

from nst_fast.fileio import atomic_path


def label(r: dict) -> str:
    c = r["config"]
    if c["method"] == "gatys":
        return f"gatys ({c['gatys_steps']} L-BFGS steps, torch {c['device']})"
    precision = c.get("precision") or ("fp16" if c["half"] else "fp32")
    masked = " masked (2 styles)" if c.get("masked") else ""
    return f"{c['method']}{masked} {c['backend']}-{c['device']} {precision} b{c['batch']}"


def table(report: dict) -> str:
    env = report["environment"]
    peak = env.get("peak_flops", {})
    lines = [
        f"# Benchmark: {env.get('gpu') or env['cpu']} ({env['cores']} cores)",
        "",
        f"{env['date']}, commit {env['git_commit']}; " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()) + ".",
        "Measured GEMM peak (the % column's limit): " + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in peak.items()) + ".",
        "",
        "| configuration | size | images/s | image p50 / p95 (s) | batch p50 / p95 (s) | vs Gatys | GFLOP/image | GFLOP/s (% of peak) | prepare / activate (s) | peak RSS (MB) | end to end images/s (ratio) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    cpu_peak = peak.get("cpu_fp32_gemm")
    for r in report["results"]:
        c = r["config"]
        if "error" in r:
            lines.append(f"| {label(r)} | {c['size']} | failed: {r['error']} | | | | | | | | |")
            continue
        gpu_peak = peak.get("cuda_fp16_gemm") if c["device"] == "cuda" else None
        limit = gpu_peak or cpu_peak
        achieved = r["achieved_flops"] / 1e9
        share = f" ({100 * r['achieved_flops'] / limit:.0f} %)" if limit else ""
        speed = "1x" if c["method"] == "gatys" else f"{r['speedup_vs_gatys']:.0f}x" if "speedup_vs_gatys" in r else ""
        memory = f"{r['peak_rss_mb']:.0f}" + (f" (torch GPU {r['peak_torch_gpu_mb']:.0f})" if "peak_torch_gpu_mb" in r else "")
        e2e = ""
        if "runner" in r:
            e2e = f"{r['runner']['images_per_s']:.2f} ({100 * r['runner']['images_per_s'] / r['images_per_s']:.0f} %)"
        lines.append(
            f"| {label(r)} | {c['size']} | {r['images_per_s']:.3g} | {r['image_p50_s']:.3g} / {r['image_p95_s']:.3g} | "
            f"{r['batch_p50_s']:.3g} / {r['batch_p95_s']:.3g} | {speed} | {r['flops_per_image'] / 1e9:.0f} | "
            f"{achieved:.0f}{share} | {r['prepare_s']:.1f} / {r['activate_s']:.1f} | {memory} | {e2e} |")
    lines += ["", "images/s counts warm batches already in memory (the bare engine); 'end to end' is the batch",
              "runner on JPEG files in and out with the same engine, and its ratio to the bare engine.",
              "prepare = building the runner (graph export or engine build included); activate = loading it.",
              "% of peak is of the FP32 GEMM peak: BF16 and INT8 (AMX) can exceed it."]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in report["results"] if "error" not in r]
    if not ok:
        return
    sizes = sorted({r["config"]["size"] for r in ok})
    names = list(dict.fromkeys(label(r) for r in ok))
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(names) * len(sizes) + 1.5))
    height = 0.8 / len(sizes)
    for i, size in enumerate(sizes):
        rates = {label(r): r["images_per_s"] for r in ok if r["config"]["size"] == size}
        ys = [j + i * height for j in range(len(names))]
        ax.barh(ys, [rates.get(n, 0) for n in names], height=height, label=f"{size} px")
    ax.set_yticks([j + 0.4 - height / 2 for j in range(len(names))], names)
    ax.set_xscale("log")
    ax.set_xlabel("images / s (log scale)")
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    ax.legend()
    env = report["environment"]
    ax.set_title(f"nst-fast bench: {env.get('gpu') or env['cpu']}", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def write_report(report: dict, stem: Path) -> Path:
    stem.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(stem.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(report, indent=1) + "\n")
    with atomic_path(stem.with_suffix(".md")) as tmp:
        tmp.write_text(table(report))
    plot(report, stem.with_suffix(".png"))
    return stem.with_suffix(".json")
