"""Embedded synthetic datasets: determinism, value ranges, masks that cover the content, speed."""

from __future__ import annotations

import time

import pytest
import torch

from lightning_gancomp.data import (
    EmbeddedClasses,
    EmbeddedDomains,
    EmbeddedImages,
    EmbeddedPairs,
    UnconditionalDataModule,
)
from lightning_gancomp.data.embedded import _Sampler, item_generator, pixel_grid, textured_background

ALL = [EmbeddedImages, EmbeddedClasses, EmbeddedPairs, EmbeddedDomains]
KEYS = {
    EmbeddedImages: {"real_img", "mask"},
    EmbeddedClasses: {"real_img", "label", "mask"},
    EmbeddedPairs: {"input_img", "real_img", "mask"},
    EmbeddedDomains: {"input_img", "real_img", "mask"},
}


@pytest.mark.parametrize("cls", ALL)
def test_same_seed_and_index_give_identical_tensors_and_others_differ(cls):
    first, second = cls(length=20, resolution=32, seed=3), cls(length=20, resolution=32, seed=3)
    torch.manual_seed(123)  # global RNG state must not matter
    a = first[5]
    torch.manual_seed(999)
    b = second[5]
    assert set(a) == KEYS[cls]
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(first[5]["real_img"], first[6]["real_img"])
    assert not torch.equal(first[5]["real_img"], cls(length=20, resolution=32, seed=4)[5]["real_img"])


@pytest.mark.parametrize("cls", ALL)
def test_ranges_shapes_and_binary_masks(cls):
    data = cls(length=8, resolution=24, seed=0)
    for index in range(8):
        item = data[index]
        for key in ("real_img", "input_img"):
            if key in item:
                assert item[key].shape == (3, 24, 24) and item[key].dtype == torch.float32
                assert item[key].min() >= -1 and item[key].max() <= 1
        mask = item["mask"]
        assert mask.shape == (1, 24, 24)
        assert set(mask.unique().tolist()) <= {0.0, 1.0}
        assert 0.05 < mask.mean() < 0.9  # a real foreground, not everything, not nothing
    with pytest.raises(IndexError):
        data[8]
    assert data[-1]["real_img"].equal(data[7]["real_img"])


def _background(seed: int, index: int, stream: int, resolution: int) -> torch.Tensor:
    """Re-draw the background exactly as the renderer does (it samples it first), in [-1, 1]."""
    sampler = _Sampler(item_generator(seed, index, stream))
    saturation = sampler.uniform(0.1, 0.5) if stream == 0 else sampler.uniform(0.0, 0.15)
    x, y = pixel_grid(resolution)
    return textured_background(sampler, x, y, saturation).clamp(0, 1) * 2 - 1


def _dilate(mask: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.max_pool2d(mask[None], 3, stride=1, padding=1)[0]


def _erode(mask: torch.Tensor) -> torch.Tensor:
    return 1 - _dilate(1 - mask)


@pytest.mark.parametrize(("cls", "stream"), [(EmbeddedImages, 0), (EmbeddedClasses, 1)])
def test_mask_covers_exactly_the_content_drawn_over_the_background(cls, stream):
    data = cls(length=6, resolution=48, seed=11)
    for index in range(6):
        item = data[index]
        changed = ((item["real_img"] - _background(11, index, stream, 48)).abs().amax(0) > 1e-4).float()[None]
        mask = item["mask"]
        # nothing was painted outside the mask (but for the 1-pixel anti-aliased rim) ...
        assert (changed * (1 - _dilate(mask))).sum() == 0
        # ... and the mask interior is painted (content, not background)
        interior = _erode(mask)
        assert (changed * interior).sum() >= 0.95 * interior.sum()


def test_pairs_edges_trace_the_mask_boundary_and_target_fills_it():
    data = EmbeddedPairs(length=5, resolution=48, seed=2)
    for index in range(5):
        item = data[index]
        mask = item["mask"]
        boundary = _dilate(mask) - _erode(mask)
        ink = (item["input_img"].mean(0, keepdim=True) < 0.0).float()  # dark outline pixels
        assert ink.sum() > 0
        assert (ink * (1 - _dilate(boundary))).sum() == 0  # lines only along the shape boundary
        paper = (item["real_img"] - 0.94).abs().amax(0, keepdim=True) < 1e-4  # 0.97 white in [-1,1]
        assert not (paper & (_erode(mask) > 0)).any()  # the shape is filled
        assert paper[(_dilate(mask) == 0)].all()  # outside stays paper


def test_classes_are_separable_by_their_colour_and_balanced():
    data = EmbeddedClasses(length=60, resolution=32, num_classes=10, seed=0)
    items = [data[i] for i in range(60)]
    labels = torch.stack([it["label"] for it in items])
    assert labels.tolist() == [i % 10 for i in range(60)]
    colours = torch.stack([(it["real_img"] * it["mask"]).sum((1, 2)) / it["mask"].sum() for it in items])
    means = torch.stack([colours[labels == c][:3].mean(0) for c in range(10)])  # fit on 3 per class
    predicted = torch.cdist(colours[30:], means).argmin(1)  # test on the other 3 per class
    assert torch.equal(predicted, labels[30:])


def test_domains_b_is_striped_and_a_is_plain_and_they_are_unaligned():
    data = EmbeddedDomains(length=4, resolution=64, seed=0)
    for index in range(4):
        item = data[index]
        inside_b = item["real_img"].mean(0)[item["mask"][0] > 0]
        assert (inside_b < -0.6).float().mean() > 0.2 and (
            inside_b > 0.4
        ).float().mean() > 0.2  # black + white
        brown = (item["input_img"][0] - item["input_img"][2]) > 0.15  # the A animal is brown (red > blue)
        assert brown.float().mean() > 0.03
        inside_a = item["input_img"].mean(0)[brown]
        assert (inside_a > 0.4).float().mean() < 0.05  # and plain: no white stripes
    # independent draws: the B mask is not the A silhouette (A's red-dominant region)
    item = data[0]
    a_region = ((item["input_img"][0] - item["input_img"][2]) > 0.15).float()
    assert (a_region - item["mask"][0]).abs().mean() > 0.01


@pytest.mark.parametrize("cls", ALL)
def test_items_are_cheap(cls):
    data = cls(length=100, resolution=64, seed=0)
    data[0]
    start = time.perf_counter()
    for index in range(1, 21):
        data[index]
    assert (time.perf_counter() - start) / 20 < 0.03  # a few ms typical; loose bound for loaded CI


def test_embedded_datamodule_val_is_fixed_and_differs_from_train():
    dm = UnconditionalDataModule(
        "embedded", resolution=16, batch_size=4, val_size=6, embedded_length=12, seed=5
    )
    dm.setup("fit")
    first = [b["real_img"] for b in dm.val_dataloader()]
    second = [b["real_img"] for b in dm.val_dataloader()]
    assert [t.shape[0] for t in first] == [4, 2]  # no drop_last at evaluation
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert not torch.equal(first[0][0], dm.train_set[0]["real_img"])  # other seed than training
    assert len(dm.train_dataloader()) == 3
    assert len(dm.test_set) == 6 and not torch.equal(dm.test_set[0]["real_img"], dm.val_set[0]["real_img"])
