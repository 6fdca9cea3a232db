"""BiSeNet face parser: 79999_iter.pth layout, weight resolution errors, CAGAN content masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from lightning_gancomp.nets import bisenet
from lightning_gancomp.nets.base import CheckpointMismatchError, count_params
from lightning_gancomp.nets.bisenet import (
    FACE_PARSER_ENV,
    IMAGENET_MEAN,
    IMAGENET_STD,
    BiSeNet,
    FaceParser,
    FaceParserWeightsNotFound,
    load_bisenet,
)


@pytest.fixture(scope="module")
def small_bisenet_file(tmp_path_factory) -> str:
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("parser") / "79999_iter.pth"
    torch.save(BiSeNet().state_dict(), path)
    return str(path)


# -- the public checkpoint's layout -------------------------------------------------------------
def test_state_dict_layout_of_79999_iter():
    # Numbers measured on zllrunning/face-parsing.PyTorch model.BiSeNet(n_classes=19).
    with torch.device("meta"):
        net = BiSeNet(19)
    state = net.state_dict()
    assert len(state) == 191
    assert count_params(net) == 13_300_416
    expected = {
        "cp.resnet.conv1.weight": (64, 3, 7, 7),
        "cp.resnet.layer2.0.downsample.0.weight": (128, 64, 1, 1),
        "cp.resnet.layer4.1.bn2.running_var": (512,),
        "cp.arm16.conv.conv.weight": (128, 256, 3, 3),
        "cp.arm32.conv_atten.weight": (128, 128, 1, 1),
        "cp.arm32.bn_atten.weight": (128,),
        "cp.conv_avg.conv.weight": (128, 512, 1, 1),
        "cp.conv_head16.bn.num_batches_tracked": (),
        "ffm.convblk.conv.weight": (256, 256, 1, 1),
        "ffm.conv1.weight": (64, 256, 1, 1),
        "ffm.conv2.weight": (256, 64, 1, 1),
        "conv_out.conv.conv.weight": (256, 256, 3, 3),
        "conv_out.conv_out.weight": (19, 256, 1, 1),
        "conv_out16.conv_out.weight": (19, 64, 1, 1),
        "conv_out32.conv.conv.weight": (64, 128, 3, 3),
    }
    assert {k: tuple(state[k].shape) for k in expected} == expected
    assert not any(
        k.startswith("cp.resnet.fc") or k.startswith("sp.") for k in state
    )  # no fc, no spatial path


def test_forward_shapes_and_loading(small_bisenet_file, tmp_path):
    net = load_bisenet(small_bisenet_file)
    assert not net.training
    x = torch.randn(1, 3, 32, 24)
    with torch.no_grad():
        logits, aux16, aux32 = net(x, return_aux=True)
        assert logits.shape == aux16.shape == aux32.shape == (1, 19, 32, 24)
        torch.testing.assert_close(net(x), logits)
    # DataParallel-saved files carry a "module." prefix
    state = torch.load(small_bisenet_file, weights_only=True)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({f"module.{k}": v for k, v in state.items()}, wrapped)
    reloaded = load_bisenet(str(wrapped)).state_dict()
    assert all(torch.equal(reloaded[k], v) for k, v in net.state_dict().items())
    broken = tmp_path / "broken.pth"
    torch.save({k: v for k, v in state.items() if k != "ffm.conv1.weight"}, broken)
    with pytest.raises(CheckpointMismatchError, match=r"broken\.pth.*missing keys: ffm\.conv1\.weight"):
        load_bisenet(str(broken))
    torch.save({"weight": torch.zeros(1)}, broken)
    with pytest.raises(CheckpointMismatchError, match="not a BiSeNet state dict"):
        load_bisenet(str(broken))


# -- weight resolution --------------------------------------------------------------------------
def test_missing_weights_one_line_error(tmp_path, monkeypatch):
    monkeypatch.delenv(FACE_PARSER_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FaceParserWeightsNotFound) as info:
        FaceParser()
    message = str(info.value)
    assert "\n" not in message
    assert str(tmp_path / "hub" / "checkpoints" / "79999_iter.pth") in message
    assert FACE_PARSER_ENV in message and "drive.google.com" in message and "weights_path" in message
    monkeypatch.setenv(FACE_PARSER_ENV, str(tmp_path / "env.pth"))
    with pytest.raises(FaceParserWeightsNotFound, match=f"env.pth \\(\\${FACE_PARSER_ENV}\\)"):
        FaceParser()
    with pytest.raises(FaceParserWeightsNotFound, match=r"given\.pth \(weights_path\)"):
        FaceParser(str(tmp_path / "given.pth"))  # the argument wins over the environment


def test_resolution_order_and_parser_stays_out_of_checkpoints(small_bisenet_file, tmp_path, monkeypatch):
    monkeypatch.delenv(FACE_PARSER_ENV, raising=False)
    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    (hub / "checkpoints" / "79999_iter.pth").symlink_to(small_bisenet_file)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    parser = FaceParser(parse_size=32)  # found in the hub cache
    assert parser.state_dict() == {} and list(parser.parameters()) == []
    parser.train()
    assert not parser.network.training
    parser = parser.double()
    assert next(parser.network.parameters()).dtype == torch.float64
    mask = parser.content_mask(torch.rand(1, 3, 16, 16, dtype=torch.float64) * 2 - 1)
    assert mask.shape == (1, 1, 16, 16) and set(mask.unique().tolist()) <= {0.0, 1.0}
    monkeypatch.setenv(FACE_PARSER_ENV, small_bisenet_file)
    assert FaceParser(parse_size=32).network.state_dict().keys() == parser.network.state_dict().keys()


# -- content masks ------------------------------------------------------------------------------
class ColourParser(nn.Module):
    """Planted parser: black -> background (0), red -> cloth (16), anything else -> skin (1).
    It undoes the ImageNet normalisation, so a wrong normalisation changes its answer. The
    thresholds classify bilinear blends by their dominant colour (a pixel's own block weighs
    >= 9/16 after a 2x upsampling, even at block corners)."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x)
        rgb = x * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        label = torch.ones_like(rgb[:, 0], dtype=torch.long)
        label[rgb.mean(dim=1) < 0.45] = 0
        label[(rgb[:, 0] > 0.5) & (rgb[:, 1] < 0.5)] = 16
        return F.one_hot(label, 19).permute(0, 3, 1, 2).float()


def block_image(batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """32x32 images of 8x8 black/red/white blocks in [-1, 1] and their true content mask."""
    gen = torch.Generator().manual_seed(seed)
    kind = torch.randint(0, 3, (batch, 4, 4), generator=gen)  # 0 black, 1 red, 2 white
    colours = torch.tensor([[-1.0, -1.0, -1.0], [1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    img = colours[kind].permute(0, 3, 1, 2).repeat_interleave(8, 2).repeat_interleave(8, 3)
    truth = (kind == 2).float().repeat_interleave(8, 1).repeat_interleave(8, 2).unsqueeze(1)
    return img, truth


@pytest.mark.parametrize("mode", ["pruning", "distillation"])
@pytest.mark.parametrize("batch", [1, 3])
def test_content_mask_on_planted_parser(mode, batch):
    planted = ColourParser()
    parser = FaceParser(network=planted, mode=mode, parse_size=64)
    img, truth = block_image(batch, seed=batch)
    mask = parser.content_mask(img)
    assert mask.shape == (batch, 1, 32, 32) and mask.dtype == torch.float32
    torch.testing.assert_close(mask, truth, rtol=0, atol=0)
    parsed = planted.inputs[-1]
    assert parsed.shape == (batch, 3, 64, 64)  # resized to parse_size
    white = (torch.ones(3) - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    block = truth[0, 0].nonzero()  # some white pixel, if any
    if len(block):
        y, x = (block[len(block) // 2] // 8 * 8 + 4) * 2  # centre of its block at 64 px
        torch.testing.assert_close(parsed[0, :, y, x], white)
    assert parser(img).equal(mask)  # forward is content_mask


def test_content_mask_excludes_exactly_background_and_cloth():
    labels = torch.arange(19).view(1, 1, 19).expand(1, 19, 19)

    class FixedParser(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.one_hot(labels.expand(x.shape[0], -1, -1), 19).permute(0, 3, 1, 2).float()

    mask = FaceParser(network=FixedParser(), parse_size=19).content_mask(torch.zeros(1, 3, 19, 19))
    assert mask[0, 0, 0].nonzero().flatten().tolist() == [c for c in range(19) if c not in (0, 16)]


def test_pruning_path_resizes_like_pillow():
    # CAGAN resizes a uint8 PIL image with Image.BILINEAR and the boolean mask with PIL's default
    # (nearest for mode "1"); our tensor versions must be bit-identical.
    rng = np.random.default_rng(0)
    for size_in, size_out in [(16, 40), (40, 16), (24, 24)]:
        arr = rng.integers(0, 256, (size_in, size_in, 3), dtype=np.uint8)
        pil = np.asarray(Image.fromarray(arr).resize((size_out, size_out), Image.BILINEAR))
        ours = bisenet._pil_bilinear_resize(
            torch.from_numpy(arr).permute(2, 0, 1)[None].float(), (size_out, size_out)
        )
        np.testing.assert_array_equal(ours[0].permute(1, 2, 0).numpy().astype(np.uint8), pil)
    for size_in, size_out in [(32, 16), (16, 64), (48, 16)]:  # the parser size over integer ratios
        mask = rng.random((size_in, size_in)) > 0.5
        pil_mask = np.asarray(Image.fromarray(mask).resize((size_out, size_out)))
        planted_mask = torch.from_numpy(mask).float()[None, None]
        ours_mask = (
            F.interpolate(planted_mask, (size_out, size_out), mode="nearest-exact")[0, 0].numpy() > 0.5
        )
        np.testing.assert_array_equal(ours_mask, pil_mask)
