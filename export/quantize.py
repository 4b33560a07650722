"""INT8 graphs for OpenVINO: post-training quantization of an exported FP32 ONNX graph with NNCF.

NNCF inserts FakeQuantize nodes whose ranges it measures on a calibration set of real photos; the
result is saved as OpenVINO IR (.xml + .bin). The uint8 input and output, the casts, the VGG
normalisation and the statistics are left as they are: only convolutions (and what feeds them)
get INT8. An INT8 graph is validated like every other (pipeline.export_validated) and refused
below validate.MIN_PSNR["int8"].
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from nst_fast.errors import NSTError
from nst_fast.graphs import Graph

from .validate import fit

FLOAT_OPS = ["ReduceMean", "ReduceSum", "Sqrt", "Subtract", "Divide", "Multiply", "Add"]
CALIBRATION_SIZE = (256, 256)  # activation ranges hardly depend on the image size; small keeps it quick


def import_nncf():
    try:
        import nncf
    except ImportError:
        raise NSTError("INT8 needs NNCF: pip install 'nst-fast[int8]'") from None
    return nncf


def calibration_feeds(graph: Graph, photos: list[tuple[str, np.ndarray]], styles: list[tuple[np.ndarray, np.ndarray]]):
    """One feed per photo (batch of one); AdaIN cycles through several styles' statistics, since
    the decoder's activation ranges depend on the style as much as on the photo."""
    if not photos:
        raise NSTError("INT8 calibration needs photos: pass --calibration DIR")
    feeds = []
    for i, (_, image) in enumerate(photos):
        feed = {"images": fit(image, *CALIBRATION_SIZE)[None], "alpha": np.ones(1, np.float32)}
        if graph.kind == "adain_stylizer":
            feed["style_mean"], feed["style_std"] = styles[i % len(styles)]
        feeds.append(feed)
    return feeds


def quantize(onnx_path: Path, graph: Graph, photos, styles, out_path: Path) -> Path:
    """Write the INT8 version of `onnx_path` to `out_path` (.xml, with its .bin beside it)."""
    nncf = import_nncf()
    import openvino as ov

    model = ov.Core().read_model(str(onnx_path))
    feeds = calibration_feeds(graph, photos, styles)
    # Only what feeds convolutions gets INT8: the statistics and the AdaIN arithmetic on them
    # (mean/std, normalise, rescale by the style's std) lost all of the picture when quantized.
    keep_float = nncf.IgnoredScope(types=FLOAT_OPS, validate=False)
    quantized = nncf.quantize(model, nncf.Dataset(feeds), subset_size=len(feeds),
                              target_device=nncf.TargetDevice.CPU, ignored_scope=keep_float)
    ov.save_model(quantized, str(out_path), compress_to_fp16=False)
    return out_path


def calibration_styles(graph: Graph) -> list[tuple[np.ndarray, np.ndarray]]:
    """Statistics of every bundled style preset made with this graph's encoder."""
    if graph.kind != "adain_stylizer":
        return []
    from nst_fast.errors import WeightsError
    from nst_fast.styles import PRESETS, load_preset

    styles = []
    for path in sorted(PRESETS.glob("*.safetensors")):
        try:
            preset = load_preset(path, graph.source["encoder_id"])
        except WeightsError:
            continue
        styles.append((preset.mean.numpy(), preset.std.numpy()))
    if not styles:
        raise NSTError(f"no style preset matches encoder {graph.source['encoder_id']}: INT8 AdaIN needs "
                       "style statistics to calibrate with (nst-fast presets STYLES_DIR)")
    return styles
