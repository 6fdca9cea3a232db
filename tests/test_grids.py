"""Labelled sample grids: layout, display upsampling, labels drawn in the margin."""

import numpy as np
import pytest
import torch

from lightning_gancomp.callbacks.grids import LABEL_WIDTH, PAD, display_scale, render_labelled_grid


def test_rows_wrap_upsample_and_carry_labels():
    teacher = -torch.ones(10, 3, 16, 16)  # black
    student = torch.ones(3, 3, 16, 16)  # white
    image = render_labelled_grid([("teacher", teacher), ("student", student)], per_line=8, min_size=64)
    cell = 64 + PAD  # 16-px images shown 4x larger
    assert image.size == (LABEL_WIDTH + 8 * cell + PAD, 3 * cell + PAD)  # 10 images wrap onto 2 lines
    pixels = np.asarray(image)
    assert pixels[PAD + 10, LABEL_WIDTH + 10].tolist() == [0, 0, 0]  # a teacher tile
    assert pixels[2 * cell + PAD + 10, LABEL_WIDTH + 10].tolist() == [255, 255, 255]  # student tile
    margin = pixels[:cell, :LABEL_WIDTH]
    assert (margin < 128).any()  # the label text is drawn
    assert not (pixels[cell : 2 * cell, :LABEL_WIDTH] < 128).any()  # a wrapped line has no label


def test_display_scale_and_empty_grid():
    assert [display_scale(h) for h in (8, 32, 64, 256)] == [16, 4, 2, 1]  # at least 128 px to see a face
    with pytest.raises(ValueError, match="at least one row"):
        render_labelled_grid([])
