"""The quality measures of `nst-fast eval`, each a function of images (uint8 H x W x 3 arrays).

- Style identification: which of K candidate paintings does an output imitate? Two judges rank
  the candidates by a distance. `VGGStatistics` looks where the models were trained to look
  (per-channel mean and std of VGG activations, the AdaIN style loss); `ColourTexture` shares
  nothing with training (Lab colour histograms and LBP texture histograms, from scikit-image), so
  a model cannot score on it by gaming the VGG.
- Content preservation: F-score of the output's HED edges against the photo's.
- Grid texture: how much of an output's fine detail repeats every 8 px, in step with the
  encoder's relu4_1 cells (the AdaIN decoder's grid; the transformers' stride-4 one too).
- Losses of Gatys et al. (content at relu4_2, Gram style at relu1_1..5_1), the objective the
  baseline optimises, so fast methods can be quoted as a ratio to it.
- PSNR, for backends against torch FP32.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from nst_fast.adain import mean_std
from nst_fast.gatys import GatysConfig
from nst_fast.losses import gram
from nst_fast.stylizers import from_uint8

STAT_TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
LAB_BINS = 8  # per channel, joint a*b* plus L*
LBP_SCALES = ((8, 1), (16, 2))  # (points, radius) of the uniform LBP codes


def as_tensor(image: np.ndarray) -> torch.Tensor:
    return from_uint8(torch.from_numpy(np.ascontiguousarray(image))[None])


class VGGStatistics:
    """Distance in the space of AdaIN's style loss: each tap's mean/std vectors, the tap's squared
    distance divided by the average squared size of the candidates' vectors there, so the four
    taps count alike (raw, relu4_1 would outweigh relu1_1 a hundredfold)."""

    name = "VGG statistics"

    def __init__(self, vgg):
        self.vgg = vgg

    @torch.no_grad()
    def features(self, image: np.ndarray) -> dict[str, torch.Tensor]:
        feats = self.vgg(as_tensor(image), STAT_TAPS)
        return {k: torch.cat(mean_std(f), 1).flatten() for k, f in feats.items()}

    def fit(self, candidates: list[np.ndarray]) -> None:
        self.candidates = [self.features(c) for c in candidates]
        self.scale = {k: float(np.mean([c[k].pow(2).mean().item() for c in self.candidates])) for k in STAT_TAPS}

    def distances(self, image: np.ndarray) -> np.ndarray:
        x = self.features(image)
        return np.array([sum((x[k] - c[k]).pow(2).mean().item() / self.scale[k] for k in STAT_TAPS)
                         for c in self.candidates])


class ColourTexture:
    """Chi-square distance of Lab colour histograms plus that of multi-scale uniform-LBP
    histograms (each in [0, 1]), weighted equally: palette and brushwork."""

    name = "Lab colour + LBP texture"

    @staticmethod
    def features(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from skimage.color import rgb2gray, rgb2lab
        from skimage.feature import local_binary_pattern

        lab = rgb2lab(image).reshape(-1, 3)
        lightness = np.histogram(lab[:, 0], LAB_BINS, (0, 100))[0]
        chroma = np.histogram2d(lab[:, 1], lab[:, 2], LAB_BINS, [(-100, 100), (-100, 100)])[0].ravel()
        colour = np.concatenate([lightness / lightness.sum(), chroma / chroma.sum()]) / 2
        grey = (rgb2gray(image) * 255).astype(np.uint8)
        texture = []
        for points, radius in LBP_SCALES:
            codes = local_binary_pattern(grey, points, radius, "uniform")
            hist = np.bincount(codes.astype(int).ravel(), minlength=points + 2)
            texture.append(hist / hist.sum())
        return colour, np.concatenate(texture) / len(LBP_SCALES)

    def fit(self, candidates: list[np.ndarray]) -> None:
        self.candidates = [self.features(c) for c in candidates]

    def distances(self, image: np.ndarray) -> np.ndarray:
        colour, texture = self.features(image)
        return np.array([chi_square(colour, c) + chi_square(texture, t) for c, t in self.candidates]) / 2


def chi_square(p: np.ndarray, q: np.ndarray) -> float:
    """Chi-square distance of two histograms that each sum to 1: 0 alike, 1 disjoint."""
    total = p + q
    nonzero = total > 0
    return float(0.5 * ((p - q)[nonzero] ** 2 / total[nonzero]).sum())


def rank_of(distances: np.ndarray, true_index: int) -> int:
    """1 when the true candidate is the nearest; ties count against it."""
    return int((distances <= distances[true_index]).sum())


@torch.no_grad()
def edge_map(hed, image: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """HED's edges, thinned to one pixel (HED's own edges are several pixels wide)."""
    from skimage.morphology import thin

    return thin(hed(as_tensor(image))[0, 0].numpy() >= threshold)


def edge_fscore(reference: np.ndarray, edges: np.ndarray, tolerance: float = 0.0075) -> float:
    """F-score of edge pixels matched within `tolerance` x the image diagonal (the BSDS benchmark's
    default), as precision (output edges near a photo edge) and recall (photo edges near an
    output edge). 1 is every edge kept and none invented."""
    from scipy.ndimage import distance_transform_edt

    if not reference.any() and not edges.any():
        return 1.0
    if not reference.any() or not edges.any():
        return 0.0
    radius = tolerance * np.hypot(*reference.shape)
    precision = (distance_transform_edt(~reference)[edges] <= radius).mean()
    recall = (distance_transform_edt(~edges)[reference] <= radius).mean()
    return float(0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))


def grid_score(image: np.ndarray, period: int = 8) -> float:
    """The fine detail (luminance less its Gaussian blur, sigma 2 px) averaged over all the image's
    period x period blocks, position by position, as a fraction of the detail's spread: about
    1 / sqrt(blocks) (0.03-0.06 on 256 px photos) where nothing repeats, up to 1 for a pure grid.
    Whole blocks from the top left, where the graphs' cells start."""
    from scipy.ndimage import gaussian_filter

    grey = image.astype(np.float64).mean(axis=2)
    detail = grey - gaussian_filter(grey, 2.0)
    h, w = (s // period * period for s in detail.shape)
    detail = detail[:h, :w]
    if not detail.std():
        return 0.0
    mean_block = detail.reshape(h // period, period, w // period, period).mean(axis=(0, 2))
    return float(mean_block.std() / detail.std())


class GatysLosses:
    """Unweighted content and style terms of the Gatys objective for (output, photo, style)."""

    def __init__(self, vgg, config: GatysConfig | None = None):
        self.vgg, self.config = vgg, config or GatysConfig()

    @torch.no_grad()
    def __call__(self, output: np.ndarray, photo: np.ndarray, style: np.ndarray) -> dict[str, float]:
        cfg = self.config
        out = self.vgg(as_tensor(output), (cfg.content_layer, *cfg.style_layers))
        content = self.vgg(as_tensor(photo), (cfg.content_layer,))[cfg.content_layer]
        styles = self.vgg(as_tensor(style), cfg.style_layers)
        return {"content_loss": F.mse_loss(out[cfg.content_layer], content).item(),
                "style_loss": sum(F.mse_loss(gram(out[k]), gram(styles[k])).item() for k in cfg.style_layers)}

