"""Contact sheets: a labelled grid of images, for comparing styles, strengths and methods at a glance."""
from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .images import fit_size, save_image

GAP = 8
BACKGROUND = (235, 235, 235)
INK = (40, 40, 40)


def contact_sheet(rows: list[list[np.ndarray]], path: str | os.PathLike, labels: list[str] | None = None,
                  column_titles: list[str] | None = None, cell: int = 256) -> None:
    """Save a grid: row i holds rows[i], each image fitted into a cell x cell square and centred.

    `labels` (one per row) go to the left of the rows, `column_titles` above the columns.
    Rows may be ragged; missing cells stay empty.
    """
    if labels is not None and len(labels) != len(rows):
        raise ValueError(f"{len(labels)} labels for {len(rows)} rows")
    font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_height = measure.textbbox((0, 0), "Ag", font=font)[3]
    label_width = max((measure.textlength(t, font=font) for t in labels or []), default=0)
    left = GAP + math.ceil(label_width) if labels else 0
    top = text_height + GAP if column_titles else 0
    n_cols = max(len(row) for row in rows)
    pitch = cell + GAP
    sheet = Image.new("RGB", (left + GAP + n_cols * pitch, top + GAP + len(rows) * pitch), BACKGROUND)
    draw = ImageDraw.Draw(sheet)

    for c, title in enumerate(column_titles or []):
        x = left + GAP + c * pitch + (cell - draw.textlength(title, font=font)) / 2
        draw.text((x, GAP // 2), title, fill=INK, font=font)
    for r, row in enumerate(rows):
        y = top + GAP + r * pitch
        if labels:
            draw.text((GAP, y + (cell - text_height) / 2), labels[r], fill=INK, font=font)
        for c, array in enumerate(row):
            image = Image.fromarray(array).convert("RGB")
            image = image.resize(fit_size(image.size, cell), Image.LANCZOS)
            x = left + GAP + c * pitch
            sheet.paste(image, (x + (cell - image.width) // 2, y + (cell - image.height) // 2))
    save_image(np.asarray(sheet), path)


def run_sheet(jobs, path: str | os.PathLike, limit: int = 24) -> str | None:
    """A sheet of a run's first `limit` images (done or skipped) beside their outputs; the line that
    says where it is (and how many it leaves out), None when there was nothing to show. Videos
    are left out."""
    from .images import load_image

    made = [(j.src, j.dst) for j in jobs if j.status in ("done", "skipped") and not j.is_video]
    pairs = made[:limit]
    if not pairs:
        return None
    rows = [[load_image(src, 512), load_image(dst, 512)] for src, dst in pairs]
    contact_sheet(rows, path, labels=[src.name for src, _ in pairs], column_titles=["input", "output"])
    more = f" (the first {limit} of {len(made)} images)" if len(made) > limit else ""
    return f"contact sheet: {path}{more}"
