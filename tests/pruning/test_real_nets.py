"""Surgery equivalence and the CAGAN reference numbers on the project's real networks."""

import copy

import pytest
import torch

from lightning_gancomp.commands.export import DeterministicGenerator, example_inputs
from lightning_gancomp.nets.base import count_params, validate_channel_groups
from lightning_gancomp.nets.biggan import (
    BigGANDiscriminator,
    BigGANGenerator,
    biggan128_config,
    sagan128_config,
)
from lightning_gancomp.nets.pix2pix import NLayerDiscriminator, ResnetGenerator, UnetGenerator
from lightning_gancomp.nets.sngan import SNGANGenerator
from lightning_gancomp.nets.stylegan2 import StyleGAN2Discriminator, StyleGAN2Generator
from lightning_gancomp.nets.stylegan_layers import minibatch_stddev
from lightning_gancomp.pruning.importance import L1Scorer, RandomScorer
from lightning_gancomp.pruning.plan import plan_from_keep, uniform_plan
from lightning_gancomp.pruning.surgery import apply_plan, student_config, zero_dropped_channels

TINY = {
    "stylegan2": lambda: StyleGAN2Generator(
        32, z_dim=16, w_dim=16, n_mapping=2, channels=[16, 12, 10, 8, 8, 6, 6, 4]
    ),
    "sngan": lambda: SNGANGenerator(z_dim=16, stream_channels=[12, 10, 8, 8]),
    "biggan": lambda: BigGANGenerator(
        **biggan128_config(resolution=32, ch=8, num_classes=5, shared_dim=8, attention_resolutions=(16,))
    ),
    "sagan": lambda: BigGANGenerator(
        **sagan128_config(resolution=32, ch=8, num_classes=5, attention_resolutions=(16,))
    ),
    "resnet_instance": lambda: ResnetGenerator(ngf=6, n_blocks=2),
    "resnet_batch": lambda: ResnetGenerator(ngf=6, n_blocks=2, norm="batch"),
    "unet": lambda: UnetGenerator(num_downs=6, ngf=4),
    "unet_instance": lambda: UnetGenerator(num_downs=5, ngf=4, norm="instance"),
}


def _randomise_buffers(net):
    # non-trivial running statistics, so norm layers are part of what must be cut consistently
    with torch.no_grad():
        for name, buf in net.named_buffers():
            if name.endswith("running_mean"):
                buf.normal_()
            elif name.endswith("running_var"):
                buf.uniform_(0.5, 2.0)


def _random_plan(net, seed):
    gen = torch.Generator().manual_seed(seed)
    keep = {}
    for g in net.channel_groups():
        n = int(torch.randint(max(1, g.min_size), g.size + 1, (1,), generator=gen))
        keep[g.name] = torch.randperm(g.size, generator=gen)[:n].tolist()
    return plan_from_keep(net, keep)


@pytest.mark.parametrize("family", sorted(TINY))
@pytest.mark.parametrize("seed", [0, 1])
def test_surgery_equivalence_on_every_generator_family(family, seed):
    torch.manual_seed(seed)
    net = TINY[family]().eval()
    validate_channel_groups(net)
    _randomise_buffers(net)
    plan = _random_plan(net, seed)
    reference = DeterministicGenerator(zero_dropped_channels(copy.deepcopy(net), plan))
    student = apply_plan(net, plan)
    validate_channel_groups(student)
    inputs = example_inputs(net, batch=2, seed=seed)
    with torch.no_grad():
        err = (reference(*inputs) - DeterministicGenerator(student)(*inputs)).abs().max().item()
    assert err <= 1e-5, f"{family}: max diff {err}"
    assert count_params(student) < count_params(net)


@pytest.mark.parametrize("family", ["unet", "unet_instance"])
def test_unet_every_skip_and_up_map_is_cut(family):
    # all 2·num_downs - 1 maps pruned at once: each up conv's concatenated input is cut in two
    # windows (skip at offset 0, up path after it) with one combined index
    net = TINY[family]().eval()
    _randomise_buffers(net)
    groups = validate_channel_groups(net)
    assert len(groups) == 2 * net.num_downs - 1
    plan = plan_from_keep(net, {g.name: list(range(1, g.size, 2)) for g in groups})
    student = apply_plan(net, plan)
    assert student.down_channels == [c // 2 for c in net.down_channels]
    assert student.up_channels == [c // 2 for c in net.up_channels]
    assert student.ups[1].conv.in_channels == (net.down_channels[1] + net.up_channels[1]) // 2
    reference = zero_dropped_channels(copy.deepcopy(net), plan)
    x = torch.rand(2, 3, 2**net.num_downs, 2**net.num_downs) * 2 - 1
    with torch.no_grad():
        assert (reference(x) - student(x)).abs().max() <= 1e-5


@pytest.mark.parametrize("family", ["unet", "unet_instance"])
def test_scorers_give_every_unet_group_one_score_per_channel(family):
    from lightning_gancomp.pruning.importance import ContentAwareScorer

    net = TINY[family]().eval()
    inputs = [torch.rand(2, 3, 2**net.num_downs, 2**net.num_downs) * 2 - 1]
    scorers = [
        L1Scorer("outgoing"),
        L1Scorer("incoming"),
        ContentAwareScorer(n_samples=2, batch_size=2, inputs=inputs, progress=False),
    ]
    for scorer in scorers:
        scores = scorer(net)
        assert {k: tuple(v.shape) for k, v in scores.items()} == {
            g.name: (g.size,) for g in net.channel_groups()
        }
        for name, score in scores.items():
            assert torch.isfinite(score).all() and score.sum() > 0, (type(scorer).__name__, name)


@pytest.mark.parametrize(
    "make",
    [
        lambda: BigGANDiscriminator(resolution=32, ch=16, num_classes=5, attention_resolutions=(16,)),
        lambda: NLayerDiscriminator(ndf=4),
    ],
    ids=["biggan_d", "patchgan"],
)
def test_surgery_equivalence_on_discriminators(make):
    net = make().eval()
    if not net.channel_groups():
        pytest.skip("no prunable groups declared")
    _randomise_buffers(net)
    plan = _random_plan(net, 0)
    reference = zero_dropped_channels(copy.deepcopy(net), plan)
    student = apply_plan(net, plan)
    res = 32 if isinstance(net, BigGANDiscriminator) else 64
    img = torch.randn(2, getattr(net, "in_channels", 3), res, res)
    args = (img, torch.tensor([1, 3])) if isinstance(net, BigGANDiscriminator) else (img,)
    with torch.no_grad():
        assert (reference(*args) - student(*args)).abs().max() <= 1e-5


def _stylegan2_d():
    torch.manual_seed(0)
    d = StyleGAN2Discriminator(32, channels=[8, 6, 5, 7]).eval()
    with torch.no_grad():  # biases start at 0: make them matter
        for name, param in d.named_parameters():
            if name.endswith("bias"):
                param.normal_(0, 0.3)
    return d


def test_stylegan2_discriminator_inner_maps_prune_exactly():
    d = _stylegan2_d()
    groups = validate_channel_groups(d)
    assert [g.name for g in groups] == ["convs.0", "convs.1", "convs.2", "convs.3"]
    scores = L1Scorer("outgoing")(d)  # final_conv's stddev input column is no channel's
    assert {k: tuple(v.shape) for k, v in scores.items()} == {
        "convs.0": (8,),
        "convs.1": (6,),
        "convs.2": (5,),
        "convs.3": (7,),
    }
    plan = _random_plan(d, 0)
    plan = plan_from_keep(d, {name: list(g.keep) for name, g in plan.groups.items() if name != "convs.3"})
    student = apply_plan(d, plan)
    assert student.channels == [len(plan.groups[f"convs.{i}"].keep) for i in range(3)] + [7]
    reference = zero_dropped_channels(copy.deepcopy(d), plan)
    img = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert (reference(img) - student(img)).abs().max() <= 1e-5


def test_stylegan2_discriminator_last_map_prunes_exactly_up_to_the_stddev_mean():
    # the last map is read through cat([x, stddev]) (window at offset 0, one fixed entry): the
    # student equals the zeroed teacher whose stddev feature averages the kept channels only
    d = _stylegan2_d()
    keep = [0, 2, 3, 6]
    plan = plan_from_keep(d, {"convs.3": keep, "convs.1": [1, 4, 5]})
    student = apply_plan(d, plan)
    assert student.final_conv[0].weight.shape[1] == len(keep) + 1
    teacher = zero_dropped_channels(copy.deepcopy(d), plan)
    img = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        out = teacher.convs(img)
        stddev = minibatch_stddev(out[:, keep], teacher.stddev_group)[:, -1:]
        h = teacher.final_conv(torch.cat([out, stddev], 1))
        expected = teacher.final_linear(h.flatten(1)).squeeze(1)
        assert (expected - student(img)).abs().max() <= 1e-5
        assert (teacher(img) - student(img)).abs().max() > 1e-5  # the stddev mean does move


def test_stylegan2_256_uniform_0p7_matches_cagan_numbers():
    teacher = StyleGAN2Generator(256)
    assert count_params(teacher) == 30_034_338
    plan = uniform_plan(teacher, RandomScorer()(teacher), 0.7)
    assert student_config(teacher, plan)["channels"] == [154] * 10 + [77, 77, 39, 39]
    student = apply_plan(teacher, plan)
    assert count_params(student) == 5_573_364
    from lightning_gancomp.metrics.complexity import cagan_stylegan2_macs

    assert cagan_stylegan2_macs(teacher) == 45_124_673_536
    assert cagan_stylegan2_macs(student) == 4_123_578_080


def test_stylegan2_ratio_0p5_widths():
    teacher = StyleGAN2Generator(256)
    plan = uniform_plan(teacher, RandomScorer()(teacher), 0.5)
    assert student_config(teacher, plan)["channels"] == [256] * 10 + [128, 128, 64, 64]


@pytest.mark.parametrize("family", ["sngan", "biggan", "resnet_instance"])
def test_content_aware_scores_every_generator_task(family):
    from lightning_gancomp.pruning.importance import ContentAwareScorer

    net = TINY[family]().eval()
    with torch.no_grad():  # attention starts as the identity (gamma 0): give it a say, as after training
        for name, param in net.named_parameters():
            if name.endswith("gamma"):
                param.fill_(0.5)
    inputs = [torch.rand(2, 3, 32, 32) * 2 - 1] if family.startswith("resnet") else None
    scores = ContentAwareScorer(n_samples=4, batch_size=2, inputs=inputs, progress=False)(net)
    for group in net.channel_groups():
        assert scores[group.name].shape == (group.size,)
        assert torch.isfinite(scores[group.name]).all() and scores[group.name].sum() > 0, group.name


def test_image2image_scoring_without_inputs_is_a_clear_error():
    from lightning_gancomp.pruning.importance import ContentAwareScorer

    with pytest.raises(ValueError, match="image-to-image: scoring needs inputs"):
        ContentAwareScorer(n_samples=2, batch_size=1, progress=False)(TINY["unet"]())
