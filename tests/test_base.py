"""GanNet base: config capture, channel-group validation, save/load, one-line mismatch errors."""

import pytest
import torch
from torch import nn

from lightning_gancomp.checkpoints import (
    CheckpointError,
    load_discriminator,
    load_generator,
    read_checkpoint,
    save_generator,
)
from lightning_gancomp.nets.base import (
    NET_REGISTRY,
    ChannelGroup,
    ChannelGroupError,
    CheckpointMismatchError,
    GanNet,
    TensorSlice,
    load_net,
    net_payload,
    save_net,
    validate_channel_groups,
)


class _ChainGenerator(GanNet):
    """Two convs; the hidden map is one prunable group."""

    task = "image2image"

    def __init__(self, hidden: int = 6, kernel_sizes: tuple[int, ...] = (3, 3)) -> None:
        super().__init__()
        self.first = nn.Conv2d(3, hidden, kernel_sizes[0], padding=kernel_sizes[0] // 2)
        self.second = nn.Conv2d(hidden, 3, kernel_sizes[1], padding=kernel_sizes[1] // 2)

    def forward(self, x):
        return self.second(torch.relu(self.first(x)))

    def channel_groups(self):
        return [
            ChannelGroup(
                name="hidden",
                size=self.first.out_channels,
                members=(
                    TensorSlice("first.weight", 0, "out"),
                    TensorSlice("first.bias", 0, "out"),
                    TensorSlice("second.weight", 1, "in"),
                ),
            )
        ]

    def config_for_group_sizes(self, sizes):
        return {**self.config, "hidden": sizes.get("hidden", self.first.out_channels)}


class _TinyCritic(GanNet):
    role = "discriminator"

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, width, 3)

    def forward(self, x):
        return self.conv(x).mean((1, 2, 3))


def test_config_captures_defaults_and_converts_tuples():
    net = _ChainGenerator(hidden=5)
    assert net.config == {"hidden": 5, "kernel_sizes": [3, 3]}
    assert NET_REGISTRY["_ChainGenerator"] is _ChainGenerator


def test_config_rejects_objects_that_cannot_be_saved():
    class _Holder(GanNet):
        def __init__(self, inner: object = None) -> None:
            super().__init__()

    with pytest.raises(TypeError, match="cannot be saved"):
        _Holder(inner=nn.Linear(1, 1))


def test_save_load_round_trip_rebuilds_widths(tmp_path):
    net = _ChainGenerator(hidden=4, kernel_sizes=(1, 3))
    save_net(net, tmp_path / "g.pt", extra={"note": "pruned"})
    loaded = load_net(tmp_path / "g.pt")
    assert isinstance(loaded, _ChainGenerator) and loaded.config == net.config
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(loaded(x), net(x), rtol=0, atol=0)
    assert not list(tmp_path.glob("*.tmp-*")), "temporary file left behind"


def test_load_generator_reads_our_format_and_checks_role(tmp_path):
    save_generator(_ChainGenerator(hidden=3), tmp_path / "g.pt")
    assert isinstance(load_generator(tmp_path / "g.pt"), _ChainGenerator)
    with pytest.raises(CheckpointError, match="holds a generator"):
        load_discriminator(tmp_path / "g.pt")


def test_training_checkpoint_nets_are_found_by_role(tmp_path):
    ckpt = {
        "state_dict": {},
        "gancomp_nets": {"g_ema": net_payload(_ChainGenerator(hidden=2)), "d": net_payload(_TinyCritic())},
    }
    torch.save(ckpt, tmp_path / "run.ckpt")
    assert load_generator(tmp_path / "run.ckpt").config["hidden"] == 2
    assert isinstance(load_discriminator(tmp_path / "run.ckpt"), _TinyCritic)


def test_mismatch_names_missing_unexpected_and_first_shape_conflict(tmp_path):
    payload = net_payload(_ChainGenerator(hidden=4))
    payload["state_dict"]["second.weight"] = torch.zeros(3, 5, 3, 3)
    payload["state_dict"]["extra.weight"] = torch.zeros(1)
    del payload["state_dict"]["first.bias"]
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointMismatchError) as info:
        load_generator(tmp_path / "bad.pt")
    message = str(info.value)
    assert "\n" not in message
    assert "missing keys: first.bias" in message
    assert "unexpected keys: extra.weight" in message
    assert "second.weight: checkpoint (3, 5, 3, 3) vs network (3, 4, 3, 3)" in message


def test_unreadable_and_unknown_files_give_one_line(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        read_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="junk.pt: cannot be read"):
        read_checkpoint(tmp_path / "junk.pt")
    torch.save({"something": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="unrecognised checkpoint layout"):
        load_generator(tmp_path / "other.pt")


def test_code_carrying_pickles_are_refused(tmp_path):
    torch.save({"g_ema": {}, "hook": _ChainGenerator}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="weights-only"):
        read_checkpoint(tmp_path / "evil.pt")


def test_validate_channel_groups_catches_wrong_declarations():
    net = _ChainGenerator(hidden=4)
    assert [g.name for g in validate_channel_groups(net)] == ["hidden"]

    class _Wrong(_ChainGenerator):
        def channel_groups(self):
            (group,) = super().channel_groups()
            return [
                ChannelGroup("hidden", group.size, group.members + (TensorSlice("second.bias", 0, "aux"),))
            ]

    with pytest.raises(
        ChannelGroupError, match=r"second.bias has 3 entries along dim 0, expected 4 \(offset 0"
    ):
        validate_channel_groups(_Wrong(hidden=4))


class _ConcatGenerator(_ChainGenerator):
    """``second`` reads ``cat([hidden, extra])``: two groups own windows of one input dim."""

    def __init__(self, hidden: int = 4, extra: int = 3, extra_offset: int | None = None) -> None:
        super().__init__(hidden=hidden)
        self.extra_offset = hidden if extra_offset is None else extra_offset
        self.extra = nn.Conv2d(3, extra, 1)
        self.second = nn.Conv2d(hidden + extra, 3, 3, padding=1)

    def forward(self, x):
        return self.second(torch.cat([torch.relu(self.first(x)), self.extra(x)], 1))

    def channel_groups(self):
        extra = ChannelGroup(
            "extra",
            self.extra.out_channels,
            (
                TensorSlice("extra.weight", 0, "out"),
                TensorSlice("second.weight", 1, "in", offset=self.extra_offset),
            ),
        )
        return [*super().channel_groups(), extra]


def test_validate_channel_groups_checks_windows():
    # the hidden group's window [0, 4) no longer covers second.weight's 7 inputs: allowed
    assert [g.name for g in validate_channel_groups(_ConcatGenerator())] == ["hidden", "extra"]
    with pytest.raises(
        ChannelGroupError, match=r"second.weight dim 1: window \[0, 4\) of hidden overlaps \[2, 5\)"
    ):
        validate_channel_groups(_ConcatGenerator(extra_offset=2))
    with pytest.raises(
        ChannelGroupError, match=r"second.weight has 7 entries along dim 1, expected 8 \(offset 5"
    ):
        validate_channel_groups(_ConcatGenerator(extra_offset=5))
    with pytest.raises(ChannelGroupError, match="second.weight has negative offset -1"):
        validate_channel_groups(_ConcatGenerator(extra_offset=-1))


def test_checked_group_sizes_names_unknown_groups_and_sizes_below_minimum():
    net = _ChainGenerator(hidden=4)
    assert net.checked_group_sizes({"hidden": 2.0}) == {"hidden": 2}
    with pytest.raises(ChannelGroupError, match=r"_ChainGenerator: unknown channel groups \['ghost'\]"):
        net.checked_group_sizes({"ghost": 1})
    with pytest.raises(ChannelGroupError, match="group hidden size 0 below minimum 1"):
        net.checked_group_sizes({"hidden": 0})
