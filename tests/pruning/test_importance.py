"""Scorers: shapes, planted channels ranked correctly, DCP batched == per-direction loop."""

import pytest
import torch
from pruning_toys import (
    CentreMask,
    ConcatReader,
    PlantedContentGenerator,
    PlantedDiversityGenerator,
    ResidualChain,
    SNChain,
    ToyStyleGenerator,
)

from lightning_gancomp.pruning.importance import (
    AllOnesMask,
    ContentAwareScorer,
    DiversityAwareScorer,
    L1Scorer,
    RandomScorer,
    ThresholdMask,
    batch_sizes,
    make_scorer,
    salt_and_pepper,
)
from lightning_gancomp.pruning.plan import uniform_plan


def top(scores, k):
    return sorted(torch.argsort(scores, descending=True)[:k].tolist())


def test_official_batching_puts_remainder_in_last_batch():
    assert batch_sizes(400, 10) == [10] * 40
    assert batch_sizes(23, 5) == [5, 5, 5, 8]
    assert batch_sizes(3, 5) == [3]


def test_salt_and_pepper_only_inside_mask_one_value_per_pixel():
    img = torch.zeros(2, 3, 16, 16)
    mask = torch.zeros(2, 1, 16, 16)
    mask[..., :8, :] = 1
    noisy = salt_and_pepper(img, mask, 0.5, torch.Generator().manual_seed(0))
    assert noisy[..., 8:, :].abs().sum() == 0
    hit = noisy[..., :8, :] != 0
    assert 0.3 < hit.float().mean() < 0.7
    assert set(noisy.unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert torch.equal(noisy[:, 0], noisy[:, 1]) and torch.equal(noisy[:, 1], noisy[:, 2])


@pytest.mark.parametrize("net", [ResidualChain(), ToyStyleGenerator(), SNChain()], ids=type)
def test_weight_scorers_one_score_per_channel(net):
    for scorer in (RandomScorer(3), L1Scorer("outgoing"), L1Scorer("incoming")):
        scores = scorer(net)
        assert {g.name: (g.size,) for g in net.channel_groups()} == {
            k: tuple(v.shape) for k, v in scores.items()
        }


def test_l1_outgoing_reads_the_consumer_weights():
    net = ResidualChain(stream=4, hidden=[3])
    scores = L1Scorer("outgoing")(net)
    expected = net.blocks[0]["b"].weight.abs().sum(dim=(0, 2, 3))
    assert torch.allclose(scores["block0.hidden"].float(), expected)


def test_scorers_read_only_the_group_window_of_a_concatenated_input():
    net = ConcatReader(a=3, b=2)
    scores = L1Scorer("outgoing")(net)
    reader, head = net.reader_weight.detach().abs(), net.head.weight.detach().abs()
    # b owns input entries 4, 5 of the reader (after a's 3 and the fixed channel) and head
    # columns 16..23 (4 per channel)
    expected_b = reader[:, 4:].sum(dim=(0, 2, 3)) + head[:, 16:].reshape(3, 2, 4).sum(dim=(0, 2))
    torch.testing.assert_close(scores["b"].float(), expected_b)
    expected_a = reader[:, :3].sum(dim=(0, 2, 3)) + head[:, :12].reshape(3, 3, 4).sum(dim=(0, 2))
    torch.testing.assert_close(scores["a"].float(), expected_a)

    x = [torch.randn(2, 3, 6, 6)]
    gradient = ContentAwareScorer(n_samples=2, batch_size=2, noise_prob=0.3, inputs=x, progress=False)(net)
    net.zero_grad()
    img = net(x[0])
    noisy = salt_and_pepper(img, torch.ones_like(img[:, :1]), 0.3, torch.Generator().manual_seed(0))
    (noisy - img).abs().sum().backward()
    grad_reader, grad_head = net.reader_weight.grad.abs(), net.head.weight.grad.abs()
    expected = (
        grad_reader[:, 4:].mean(dim=(0, 2, 3)) + grad_head[:, 16:].reshape(3, 2, 4).mean(dim=(0, 2))
    ) / 2
    torch.testing.assert_close(gradient["b"].float(), expected)


def test_content_aware_matches_plain_backward_reference():
    net = ToyStyleGenerator().eval()
    scorer = ContentAwareScorer(n_samples=6, batch_size=3, noise_prob=0.3, device="cpu", progress=False)
    scores = scorer(net)
    # reference: .backward() per batch, mean |W.grad| over dims (0,1,3,4), summed over batches
    from lightning_gancomp.pruning.importance import GeneratorAdapter

    gen = torch.Generator().manual_seed(0)
    adapter = GeneratorAdapter(net)
    expected = torch.zeros(net.channels[1], dtype=torch.float64)
    for sample in adapter.input_batches([3, 3], gen, torch.device("cpu")):
        net.zero_grad()
        img = adapter.generate(sample)
        noisy = salt_and_pepper(img, torch.ones_like(img[:, :1]), 0.3, gen)
        (noisy - img).abs().sum().backward()
        expected += net.convs[1].weight.grad.abs().mean(dim=(0, 1, 3, 4)).double()
    assert torch.allclose(scores["map1"], expected, rtol=1e-6)


def test_content_aware_ranks_planted_content_channels_first():
    net = PlantedContentGenerator(hidden=8, n_content=4)
    content = ContentAwareScorer(
        n_samples=20, batch_size=5, noise_prob=0.2, mask=CentreMask(), progress=False
    )
    scores = content(net)["hidden"]
    assert top(scores, 4) == [0, 1, 2, 3]
    assert scores[4:].abs().max() == 0  # background channels never touch a noised pixel
    # weight magnitude prefers the (big-weight) background channels: the content mask matters
    assert top(L1Scorer("outgoing")(net)["hidden"], 4) == [4, 5, 6, 7]
    plan = uniform_plan(net, {"hidden": scores}, 0.5, content.describe())
    assert plan.groups["hidden"].keep == (0, 1, 2, 3)


def test_all_ones_and_threshold_masks():
    img = torch.full((2, 3, 4, 4), -1.0)
    img[..., 1:3, 1:3] = 0.5
    assert AllOnesMask()(img).sum() == 32
    assert ThresholdMask(background=-1.0)(img).sum() == 8


def test_diversity_aware_ranks_latent_driven_channels_first_and_l1_does_not():
    net = PlantedDiversityGenerator(hidden=8, n_driven=4)
    for statistic in ("sigma", "mu"):
        scorer = DiversityAwareScorer(
            n_samples=20, batch_size=5, n_directions=6, n_pca_samples=500, statistic=statistic, progress=False
        )
        scores = scorer(net)["hidden"]
        assert top(scores, 4) == [0, 1, 2, 3], statistic
        assert scores[4:].abs().max() < 1e-6 * scores[:4].abs().max()
    # L1 magnitude cannot see latent sensitivity: it keeps the big constant channels.
    assert top(L1Scorer("outgoing")(net)["hidden"], 4) == [4, 5, 6, 7]


@pytest.mark.parametrize("gradient_path", ["released", "intended", "through_moved"])
def test_dcp_vmapped_equals_per_direction_loop(gradient_path):
    net = ToyStyleGenerator().eval()
    kwargs = dict(
        n_samples=6,
        batch_size=3,
        n_directions=4,
        n_pca_samples=200,
        gradient_path=gradient_path,
        progress=False,
    )
    batched = DiversityAwareScorer(per_direction_loop=False, **kwargs)(net)
    loop = DiversityAwareScorer(per_direction_loop=True, **kwargs)(net)
    chunked = DiversityAwareScorer(per_direction_loop=False, direction_chunk=3, **kwargs)(net)
    for name in batched:
        assert torch.allclose(batched[name], loop[name], rtol=1e-5, atol=1e-12), name
        assert torch.allclose(batched[name], chunked[name], rtol=1e-5, atol=1e-12), name


def test_dcp_independent_noise_changes_scores():
    net = ToyStyleGenerator().eval()
    kwargs = dict(n_samples=4, batch_size=2, n_directions=3, n_pca_samples=200, progress=False)
    plain = DiversityAwareScorer(gradient_path="through_moved", **kwargs)(net)
    quirk = DiversityAwareScorer(gradient_path="through_moved", independent_noise=True, **kwargs)(net)
    assert not torch.allclose(plain["map2"], quirk["map2"])


def test_make_scorer_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown scorer 'magic'"):
        make_scorer("magic")


class _InPlaceDiversityGenerator(PlantedDiversityGenerator):
    """Same function with an in-place write, which torch.func.vmap rejects."""

    def forward(self, styles, *, input_is_latent=False, noise=None, randomize_noise=True, **_unused):
        w = styles if input_is_latent else self.mapping(styles)
        driven = torch.zeros(w.shape[0], self.hidden, device=w.device)
        driven[:, : self.n_driven] = w[:, : self.n_driven]
        return self.to_rgb(driven[:, :, None, None] + self.pattern[None])


def test_dcp_falls_back_to_the_loop_for_nets_vmap_cannot_handle():
    kwargs = dict(n_samples=4, batch_size=2, n_directions=3, n_pca_samples=200, progress=False)
    with pytest.warns(UserWarning, match="falls back to the per-direction loop"):
        batched = DiversityAwareScorer(per_direction_loop=False, **kwargs)(_InPlaceDiversityGenerator())
    reference = DiversityAwareScorer(per_direction_loop=True, **kwargs)(PlantedDiversityGenerator())
    assert torch.allclose(batched["hidden"], reference["hidden"], rtol=1e-5, atol=1e-9)
