"""The optimisation method of Gatys et al. (2016): the project's quality reference and speed baseline.

The pixels of one image are optimised so that its VGG features at `content_layer` match the
content image's, and its Gram matrices at `style_layers` match the style image's.

A "step" is one function evaluation: one VGG forward + backward pass, the unit that costs time,
so `steps` is an exact budget for both optimisers. Adam takes one evaluation per iteration.
L-BFGS runs as one `.step()` with `max_eval=steps`; its strong-Wolfe line search can ask for one
evaluation past that, which the closure refuses (it may also stop early on convergence:
`len(history)` is what was spent). `history` has one entry per evaluation; for L-BFGS some are
line-search trial points, so the image returned is the best one evaluated (the lowest "total").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .losses import gram, gram_loss, total_variation
from .vgg import VGGFeatures

LBFGS_HISTORY = 100  # torch's default; costs 2 x 100 image-sized buffers (~0.6 GB at 512 x 512)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


class _BudgetSpent(Exception):
    pass


@dataclass
class GatysConfig:
    steps: int = 300  # function evaluations (VGG forward + backward passes)
    optimizer: str = "lbfgs"  # lbfgs | adam
    content_layer: str = "relu4_2"
    style_layers: tuple[str, ...] = STYLE_LAYERS
    content_weight: float = 1.0
    style_weight: float = 1e5  # Gram / (C*H*W) on [0, 1] pixels
    # total_variation is a mean |dx| (~0.15 here), against final losses of ~1e2-1e3: 1e-3 would do
    # nothing; 3e3 removes single-pixel speckle at +1% style loss, 2e4 starts to soften strokes.
    tv_weight: float = 3e3
    range_weight: float = 1e8  # quadratic penalty on pixels outside [0, 1]; see stylize()
    init: str = "content"  # content | noise | style
    lr: float = 0.02  # Adam only; L-BFGS uses lr=1 with its line search
    seed: int = 0  # for init="noise"; the optimisation itself is deterministic


def targets(vgg: VGGFeatures, content: torch.Tensor, style: torch.Tensor, cfg: GatysConfig):
    """Content features and style Grams, computed once. The style image may have any size."""
    with torch.no_grad():
        content_feat = vgg(content, [cfg.content_layer])[cfg.content_layer]
        style_grams = {k: gram(f) for k, f in vgg(style, cfg.style_layers).items()}
    return content_feat, style_grams


def losses(vgg: VGGFeatures, x: torch.Tensor, content_feat, style_grams, cfg: GatysConfig) -> dict:
    """Weighted loss terms of image `x` and their sum, as tensors."""
    feats = vgg(x, (cfg.content_layer, *cfg.style_layers))
    terms = {
        "content": cfg.content_weight * F.mse_loss(feats[cfg.content_layer], content_feat),
        "style": cfg.style_weight * gram_loss(feats, style_grams),
        "tv": cfg.tv_weight * total_variation(x),
        "range": cfg.range_weight * (x - x.clamp(0, 1)).pow(2).mean(),
    }
    terms["total"] = sum(terms.values())
    return terms


def init_image(content: torch.Tensor, style: torch.Tensor, cfg: GatysConfig) -> torch.Tensor:
    if cfg.init == "content":
        return content.clone()
    if cfg.init == "noise":
        gen = torch.Generator(device=content.device).manual_seed(cfg.seed)
        return torch.rand(content.shape, generator=gen, device=content.device, dtype=content.dtype)
    if cfg.init == "style":
        return F.interpolate(style, size=content.shape[-2:], mode="bilinear", antialias=True,
                             align_corners=False).clamp(0, 1)
    raise ValueError(f"init must be content, noise or style, got {cfg.init!r}")


def stylize(content: torch.Tensor, style: torch.Tensor, vgg: VGGFeatures, cfg: GatysConfig | None = None,
            progress: Callable[[int, dict], None] | None = None) -> tuple[torch.Tensor, list[dict]]:
    """Optimise an image (1 x 3 x H x W in [0, 1], the content's size) and return it with the history."""
    cfg = cfg or GatysConfig()
    if cfg.optimizer not in ("lbfgs", "adam"):
        raise ValueError(f"optimizer must be lbfgs or adam, got {cfg.optimizer!r}")
    param = next(vgg.parameters())
    content = content.to(param.device, param.dtype)
    style = style.to(param.device, param.dtype)
    x = init_image(content, style, cfg).contiguous().requires_grad_(True)  # LBFGS views .grad flat
    content_feat, style_grams = targets(vgg, content, style, cfg)
    # Pixels are kept in [0, 1] by the smooth "range" penalty, and the result is clamped only to
    # remove what is left of it (< 0.02). Clamping between L-BFGS iterations would move the image
    # to a point the optimiser did not choose and spoil the curvature pairs it keeps. Without a
    # penalty ~2% of the pixels drift to -0.3 or 1.4, and clamping them when returning multiplied
    # the style loss of the returned image by 20 (tubingen/starry night, 128 px, 150 steps); a
    # clamp inside the loss (no gradient outside the range) left noisy saturated pixels and a
    # sigmoid parametrisation ended 25% higher than the penalty.
    history: list[dict] = []
    best, best_total = x.detach().clone(), float("inf")

    def closure():
        nonlocal best, best_total
        if len(history) == cfg.steps:
            raise _BudgetSpent
        x.grad = None
        terms = losses(vgg, x, content_feat, style_grams, cfg)
        terms["total"].backward()
        record = {"step": len(history) + 1, **{k: v.item() for k, v in terms.items()}}
        if record["total"] < best_total:
            best, best_total = x.detach().clone(), record["total"]
        history.append(record)
        if progress is not None:
            progress(record["step"], record)
        return terms["total"]

    if cfg.optimizer == "lbfgs":
        # strong_wolfe: without a line search the third step diverged (DESIGN.md).
        opt = torch.optim.LBFGS([x], lr=1, max_iter=cfg.steps, max_eval=cfg.steps, history_size=LBFGS_HISTORY,
                                line_search_fn="strong_wolfe")
        try:
            opt.step(closure)
        except _BudgetSpent:
            pass
    else:
        opt = torch.optim.Adam([x], lr=cfg.lr)
        for _ in range(cfg.steps):
            opt.step(closure)
    return best.clamp(0, 1), history
