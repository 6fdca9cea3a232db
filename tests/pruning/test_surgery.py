"""Surgery equivalence: the teacher with its dropped channels zeroed computes exactly what the
sliced student computes (≤1e-5), for random plans, on every kind of structure the engine meets."""

import copy
import dataclasses

import pytest
import torch
from pruning_toys import ConcatReader, ResidualChain, SNChain, ToyStyleGenerator

from lightning_gancomp.nets.base import validate_channel_groups
from lightning_gancomp.pruning.plan import PlanError, plan_from_keep
from lightning_gancomp.pruning.surgery import apply_plan, slice_state_dict, zero_dropped_channels


def random_plan(net, seed: int, keep_fraction: float | None = None):
    gen = torch.Generator().manual_seed(seed)
    keep = {}
    for g in net.channel_groups():
        n = (
            max(1, int(g.size * keep_fraction))
            if keep_fraction
            else int(torch.randint(1, g.size + 1, (1,), generator=gen))
        )
        keep[g.name] = torch.randperm(g.size, generator=gen)[:n].tolist()
    return plan_from_keep(net, keep)


def max_equivalence_error(net, plan, run):
    reference = zero_dropped_channels(copy.deepcopy(net), plan)
    student = apply_plan(net, plan)
    validate_channel_groups(student)
    with torch.no_grad():
        return (run(reference) - run(student)).abs().max().item(), student


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_residual_chain_equivalence(seed):
    net = ResidualChain(stream=8, hidden=[6, 5]).eval()
    for blk in net.blocks:  # non-trivial running statistics
        blk["bn"].running_mean.normal_()
        blk["bn"].running_var.uniform_(0.5, 2.0)
    x = torch.randn(2, 3, 8, 8)
    err, student = max_equivalence_error(net, random_plan(net, seed), lambda g: g(x))
    assert err <= 1e-5
    assert student.conv_in.out_channels == len(random_plan(net, seed).groups["stream"].keep)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_stylegan_like_equivalence_with_equalized_rescale(seed):
    net = ToyStyleGenerator(channels=[6, 5, 7, 4]).eval()
    z = torch.randn(3, 8)
    noise = net.make_noise(3)
    plan = random_plan(net, seed)
    err, student = max_equivalence_error(net, plan, lambda g: g(z, noise=noise, randomize_noise=False))
    assert err <= 1e-5
    assert student.channels == [len(plan.groups[f"map{i}"].keep) for i in range(4)]


def test_plain_slicing_is_not_function_preserving_for_stylegan():
    # CAGAN's official code slices without rescaling the equalized-lr weights: ToRGB (no
    # demodulation) then sees sqrt(size/kept) larger inputs, so outputs differ.
    net = ToyStyleGenerator(channels=[6, 5, 7, 8]).eval()
    plan = random_plan(net, 0, keep_fraction=0.5)
    z, noise = torch.randn(2, 8), net.make_noise(2)
    reference = zero_dropped_channels(copy.deepcopy(net), plan)
    plain = apply_plan(net, plan, rescale_equalized=False)
    with torch.no_grad():
        diff = (reference(z, noise=noise) - plain(z, noise=noise)).abs().max().item()
    assert diff > 1e-3


def test_consumer_zeroing_alone_suffices_for_stylegan():
    net = ToyStyleGenerator().eval()
    plan = random_plan(net, 3, keep_fraction=0.5)
    z, noise = torch.randn(2, 8), net.make_noise(2)
    reference = zero_dropped_channels(copy.deepcopy(net), plan, roles=("in",))
    student = apply_plan(net, plan)
    with torch.no_grad():
        assert (reference(z, noise=noise) - student(z, noise=noise)).abs().max() <= 1e-5


@pytest.mark.parametrize("seed", [0, 1])
def test_spectral_norm_chain_equivalence_slices_u0(seed):
    net = SNChain().eval()
    z = torch.randn(3, 6)
    plan = random_plan(net, seed)
    err, student = max_equivalence_error(net, plan, lambda g: g(z))
    assert err <= 1e-5
    assert student.convs[0].u0.shape == (1, len(plan.groups["h1"].keep))


def test_identity_plan_copies_everything():
    net = ToyStyleGenerator().eval()
    plan = plan_from_keep(net, {g.name: list(range(g.size)) for g in net.channel_groups()})
    student = apply_plan(net, plan)
    for k, v in net.state_dict().items():
        assert torch.equal(student.state_dict()[k], v)


def test_block_members_slice_whole_blocks():
    net = SNChain(widths=[4, 3, 3])
    plan = plan_from_keep(net, {"h0": [1, 3]})
    student = apply_plan(net, plan)
    expected = torch.cat([net.fc.weight[16:32], net.fc.weight[48:64]])
    assert torch.equal(student.fc.weight, expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_concatenation_read_by_two_groups_equivalence(seed):
    # both groups cut the same reader tensors at different offsets; the fixed middle channel
    # stays, and the equalized fan-in counts it too
    net = ConcatReader(a=5, b=4).eval()
    x = torch.randn(2, 3, 6, 6)
    plan = random_plan(net, seed)
    err, student = max_equivalence_error(net, plan, lambda g: g(x))
    assert err <= 1e-5
    assert student.reader_weight.shape[1] == len(plan.groups["a"].keep) + 1 + len(plan.groups["b"].keep)


def test_concatenation_is_cut_once_with_one_combined_index():
    net = ConcatReader(a=5, b=4)
    keep_a, keep_b = [1, 3], [0, 2, 3]
    state = slice_state_dict(net, plan_from_keep(net, {"a": keep_a, "b": keep_b}))
    # entries: a's kept channels, the fixed channel at 5, then b's kept channels after offset 6
    index = torch.tensor(keep_a + [5] + [6 + j for j in keep_b])
    scale = (len(index) / 10) ** 0.5  # kept over ALL 10 input entries, not per group
    torch.testing.assert_close(state["reader_weight"], net.reader_weight.detach()[:, index] * scale)
    head_index = (index[:, None] * 4 + torch.arange(4)).flatten()
    torch.testing.assert_close(state["head.weight"], net.head.weight.detach()[:, head_index])
    only_b = slice_state_dict(net, plan_from_keep(net, {"b": keep_b}))
    assert torch.equal(only_b["reader_weight"][:, :6], net.reader_weight.detach()[:, :6] * (9 / 10) ** 0.5)


def test_zeroing_respects_windows():
    net = ConcatReader(a=3, b=2)
    before = net.reader_weight.detach().clone()
    zero_dropped_channels(net, plan_from_keep(net, {"b": [1]}))
    zeroed = (net.reader_weight == 0).all(dim=(0, 2, 3))
    assert zeroed.tolist() == [False, False, False, False, True, False]  # b's channel 0 = entry 4
    assert torch.equal(net.reader_weight[:, :4], before[:, :4])
    assert (net.head.weight[:, 16:20] == 0).all() and (net.head.weight[:, :16] != 0).all()


def test_overlapping_windows_are_refused_by_surgery():
    class _Overlapping(ConcatReader):
        def channel_groups(self):
            return [self._branch("a", self.a, 0), self._branch("b", self.b, self.a - 1)]

    net = _Overlapping(a=3, b=2)
    with pytest.raises(ValueError, match=r"reader_weight dim 1: window \[0, 3\) of a overlaps \[2, 4\) of b"):
        apply_plan(net, plan_from_keep(net, {"a": [0]}))


def test_windows_of_one_tensor_must_agree_on_equalized_fan_in():
    # one fan-in per tensor: a rescale for one window and not the other cannot be right
    class _Inconsistent(ConcatReader):
        def channel_groups(self):
            a, b = super().channel_groups()
            members = tuple(dataclasses.replace(m, equalized_fan_in=False) for m in b.members)
            return [a, dataclasses.replace(b, members=members)]

    net = _Inconsistent(a=3, b=2)
    with pytest.raises(ValueError, match="reader_weight dim 1: members disagree on equalized_fan_in"):
        slice_state_dict(net, plan_from_keep(net, {"a": [0, 1], "b": [0, 1]}))


def test_bad_plans_are_one_line_errors():
    net = ToyStyleGenerator()
    with pytest.raises(PlanError, match="unknown channel group 'nope'"):
        plan_from_keep(net, {"nope": [0]})
    with pytest.raises(PlanError, match="index 6 out of range for size 6"):
        plan_from_keep(net, {"map0": [0, 6]})
    with pytest.raises(PlanError, match="keeps 0 channels"):
        plan_from_keep(net, {"map0": []})
    with pytest.raises(PlanError, match="made for ToyStyleGenerator, not ResidualChain"):
        apply_plan(ResidualChain(), plan_from_keep(net, {"map0": [0]}))
