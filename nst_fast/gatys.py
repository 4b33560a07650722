"""The optimisation method of Gatys et al. (2016): the project's quality reference and speed baseline.

The pixels of one image are optimised so that its VGG features at `content_layer` match the
content image's, and its Gram matrices at `style_layers` match the style image's.

A "step" is one function evaluation: one VGG forward + backward pass, the unit that costs time.
Adam takes one evaluation per iteration. L-BFGS runs as a single `.step()` with
`max_eval=steps`, and PyTorch caps its strong-Wolfe line search at the evaluations left, so it
never spends more than `steps` passes (it may spend fewer if it converges: `len(history)` is
what was spent). `history` has one entry per evaluation; for L-BFGS a few of them are
line-search trial points, so the curve is not monotonic at every entry.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .losses import gram, gram_loss, total_variation
from .vgg import VGGFeatures

LBFGS_HISTORY = 100
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


@dataclass
class GatysConfig:
    steps: int = 300  # function evaluations (VGG forward + backward passes)
    optimizer: str = "lbfgs"  # lbfgs | adam
    content_layer: str = "relu4_2"
    style_layers: tuple[str, ...] = STYLE_LAYERS
    content_weight: float = 1.0
    style_weight: float = 1e5  # Gram / (C*H*W) on [0, 1] pixels
    tv_weight: float = 1e-3
    init: str = "content"  # content | noise | style
    lr: float = 0.02  # Adam only; L-BFGS uses lr=1 with its line search
    seed: int = 0


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
    }
    terms["total"] = terms["content"] + terms["style"] + terms["tv"]
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
    torch.manual_seed(cfg.seed)
    param = next(vgg.parameters())
    content = content.to(param.device, param.dtype)
    style = style.to(param.device, param.dtype)
    content_feat, style_grams = targets(vgg, content, style, cfg)

    # The image is optimised unconstrained and clamped only when returned. Clamping it between
    # L-BFGS iterations would move it to a point the optimiser did not choose, so the curvature
    # pairs it keeps (steps and gradient changes) would be wrong; with a content or style start
    # the pixels stay within a few hundredths of [0, 1].
    x = init_image(content, style, cfg).contiguous().requires_grad_(True)  # LBFGS views .grad flat
    history: list[dict] = []

    def closure():
        x.grad = None
        terms = losses(vgg, x, content_feat, style_grams, cfg)
        terms["total"].backward()
        record = {"step": len(history) + 1, **{k: v.item() for k, v in terms.items()}}
        history.append(record)
        if progress is not None:
            progress(record["step"], record)
        return terms["total"]

    if cfg.optimizer == "lbfgs":
        # strong_wolfe: without a line search the third step diverged (DESIGN.md).
        opt = torch.optim.LBFGS([x], lr=1, max_iter=cfg.steps, max_eval=cfg.steps, history_size=LBFGS_HISTORY,
                                line_search_fn="strong_wolfe")
        opt.step(closure)
    elif cfg.optimizer == "adam":
        opt = torch.optim.Adam([x], lr=cfg.lr)
        for _ in range(cfg.steps):
            opt.step(closure)
    else:
        raise ValueError(f"optimizer must be lbfgs or adam, got {cfg.optimizer!r}")
    return x.detach().clamp(0, 1), history
