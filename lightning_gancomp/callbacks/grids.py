"""Sample grids a person can read: labelled rows (real / teacher / student, input / output), small
images upsampled for display (nearest neighbour: pixels stay pixels), saved as PNG.

A grid is a list of ``(label, images [N, 3, H, W] in [-1, 1])`` blocks; each block starts a new
line with its label in a left margin and wraps after ``per_line`` images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

LabelledRows = Sequence[tuple[str, torch.Tensor]]
LABEL_WIDTH = 72
PAD = 2


def display_scale(height: int, min_size: int = 128) -> int:
    """Integer upsampling factor so an image is at least ``min_size`` px tall."""
    return max(1, math.ceil(min_size / max(1, height)))


def _to_uint8(images: torch.Tensor, scale: int) -> torch.Tensor:
    unit = (images.detach().float().cpu().clamp(-1, 1) + 1) / 2
    if scale > 1:
        unit = F.interpolate(unit, scale_factor=scale, mode="nearest")
    return (unit * 255).round().to(torch.uint8)


def render_labelled_grid(rows: LabelledRows, per_line: int = 8, min_size: int = 128) -> Image.Image:
    """One RGB image: every block on its own line(s), label at the left."""
    if not rows:
        raise ValueError("a sample grid needs at least one row of images")
    height = max(int(images.shape[-2]) for _, images in rows)
    scale = display_scale(height, min_size)
    cell = height * scale + PAD
    lines = [(label if k == 0 else "", images[k : k + per_line])
             for label, images in rows for k in range(0, images.shape[0], per_line)]  # fmt: skip
    width = LABEL_WIDTH + per_line * cell + PAD
    canvas = Image.new("RGB", (width, len(lines) * cell + PAD), "white")
    draw = ImageDraw.Draw(canvas)
    for y, (label, images) in enumerate(lines):
        top = y * cell + PAD
        if label:
            draw.text((4, top + cell // 2 - 6), label, fill="black")
        pixels = _to_uint8(images, scale)
        for x, image in enumerate(pixels):
            tile = Image.fromarray(image.permute(1, 2, 0).numpy(), "RGB")
            canvas.paste(tile, (LABEL_WIDTH + x * cell, top))
    return canvas
