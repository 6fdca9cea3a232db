"""DCP scores against a reference written from the official formulas (jiwoogit/DCP-GAN
``Util/diversity_aware_pruning.py`` ``Get_Diversity_Pruning_Score`` and its ``stylegan3``-branch
variant): one plain ``loss.backward()`` per direction on a tiny StyleGAN2 generator, the scored
gradients read off ``conv.weight.grad`` of ``[conv1] + convs + [last ToRGB]``."""

from __future__ import annotations

import pytest
import torch

from lightning_gancomp.checkpoints import CheckpointError
from lightning_gancomp.nets.stylegan2 import StyleGAN2Generator
from lightning_gancomp.pruning.diversity import DiversityAwareScorer, latent_directions
from lightning_gancomp.pruning.importance import GeneratorAdapter, batch_sizes

KW = dict(n_samples=5, batch_size=2, n_directions=3, alpha=5.0, n_pca_samples=64, seed=3)


def tiny_generator() -> StyleGAN2Generator:
    torch.manual_seed(0)
    net = StyleGAN2Generator(8, z_dim=8, w_dim=8, n_mapping=2, channels=[4, 5, 6, 3])
    with torch.no_grad():  # non-zero noise strengths, so the noise maps matter
        for i, conv in enumerate([net.conv1, *net.convs]):
            conv.noise.weight.fill_(0.3 + 0.1 * i)
    return net.eval()


def noise_maps(net: StyleGAN2Generator, b: int, gen: torch.Generator) -> list[torch.Tensor]:
    return [torch.randn((b, *m.shape[1:]), generator=gen) for m in net.make_noise(1)]


def official_scores(net, path, psi=1.0, fixed_z=None, **kw) -> list[torch.Tensor]:
    """Per-map scores by the official per-direction loop; draws follow the scorer's documented order."""
    gen = torch.Generator().manual_seed(kw["seed"])
    pca = latent_directions(GeneratorAdapter(net), kw["n_pca_samples"], gen, torch.device("cpu"))
    mean_w = pca.mean.unsqueeze(0)
    readers = [net.conv1, *net.convs, net.to_rgbs[-1]]
    total = [torch.zeros(m.conv.in_channels, dtype=torch.float64) for m in readers]
    start = 0
    for b in batch_sizes(kw["n_samples"], kw["batch_size"]):
        z = torch.randn(b, net.z_dim, generator=gen)
        if fixed_z is not None:
            z = fixed_z[start : start + b]
        start += b
        shared = noise_maps(net, b, gen)
        picked = pca.components[
            torch.multinomial(pca.variance_ratio, kw["n_directions"], True, generator=gen)
        ]
        per_direction = []
        for d in picked:
            latents = net.style(z)
            moved_latents = latents.detach() + kw["alpha"] * d
            noise_img, noise_pca = shared, shared
            if path == "released":  # randomize_noise=True: every forward its own maps
                noise_img, noise_pca = noise_maps(net, b, gen), noise_maps(net, b, gen)
            common = dict(input_is_latent=True, truncation=psi, truncation_latent=mean_w)
            with torch.set_grad_enabled(path != "through_moved"):
                img = net(latents, noise=noise_img, **common)
            with torch.set_grad_enabled(path != "intended"):
                img_pca = net(moved_latents, noise=noise_pca, **common)
            net.zero_grad()
            torch.sum(torch.abs(img_pca - img)).backward()
            per_direction.append([m.conv.weight.grad.abs().mean(dim=(0, 1, 3, 4)).double() for m in readers])
        for n in range(len(readers)):
            g = torch.stack([p[n] for p in per_direction])
            total[n] += ((g - g.mean(0)) ** 2).sum(0)
    return total


def as_list(scores: dict[str, torch.Tensor], net: StyleGAN2Generator) -> list[torch.Tensor]:
    return [scores[net.group_name(i)] for i in range(len(net.channels))]


@pytest.mark.parametrize("path", ["released", "intended", "through_moved"])
@pytest.mark.parametrize("loop", [False, True])
def test_gradient_paths_match_the_official_loop(path, loop):
    net = tiny_generator()
    expected = official_scores(net, path, **KW)
    got = as_list(
        DiversityAwareScorer(gradient_path=path, per_direction_loop=loop, progress=False, **KW)(net), net
    )
    for e, g in zip(expected, got):
        assert torch.allclose(g, e, rtol=2e-4, atol=1e-12), (path, loop)


def test_paths_give_different_scores_and_released_is_the_default():
    net = tiny_generator()
    default = DiversityAwareScorer(progress=False, **KW)
    assert default.gradient_path == "released" and default.describe()["independent_noise"] is True
    scores = {
        p: as_list(DiversityAwareScorer(gradient_path=p, progress=False, **KW)(net), net)[2]
        for p in ("released", "intended", "through_moved")
    }
    assert not torch.allclose(scores["released"], scores["intended"], rtol=1e-3)
    assert not torch.allclose(scores["intended"], scores["through_moved"], rtol=1e-3)
    assert torch.equal(as_list(default(net), net)[2], scores["released"])


@pytest.mark.parametrize("path", ["released", "through_moved"])
def test_truncation_steps_psi_times_alpha(path):
    # Official: both w and w + αd go through the truncation, so the step is ψ·α.
    net = tiny_generator()
    expected = official_scores(net, path, psi=0.5, **KW)
    got = as_list(
        DiversityAwareScorer(
            gradient_path=path, truncation=0.5, per_direction_loop=False, progress=False, **KW
        )(net),
        net,
    )
    for e, g in zip(expected, got):
        assert torch.allclose(g, e, rtol=2e-4, atol=1e-12)


def test_chunked_directions_equal_one_batch():
    net = tiny_generator()
    whole = DiversityAwareScorer(per_direction_loop=False, progress=False, **KW)(net)
    chunked = DiversityAwareScorer(per_direction_loop=False, direction_chunk=2, progress=False, **KW)(net)
    for name in whole:
        assert torch.allclose(whole[name], chunked[name], rtol=1e-5, atol=1e-12)


def test_latents_file_replaces_z(tmp_path):
    net = tiny_generator()
    z = torch.randn(7, 8, generator=torch.Generator().manual_seed(9))
    torch.save(z, tmp_path / "z.pt")
    got = as_list(DiversityAwareScorer(latents_path=str(tmp_path / "z.pt"), progress=False, **KW)(net), net)
    expected = official_scores(net, "released", fixed_z=z, **KW)
    for e, g in zip(expected, got):
        assert torch.allclose(g, e, rtol=2e-4, atol=1e-12)
    torch.save(z[:3], tmp_path / "short.pt")
    with pytest.raises(CheckpointError, match=r"short.pt: expected a \[>= 5, 8\] tensor, got \(3, 8\)"):
        DiversityAwareScorer(latents_path=str(tmp_path / "short.pt"), progress=False, **KW)(net)


def test_unknown_gradient_path_is_rejected():
    with pytest.raises(ValueError, match="gradient_path must be one of"):
        DiversityAwareScorer(gradient_path="both")


@pytest.mark.parametrize("direction", ["outgoing", "incoming"])
def test_effective_l1_matches_cagan_get_weight_based_score(direction):
    # Official: Get_Generator_Effective_Weights (modulate, demodulate per sample), mean over the
    # samples, then Get_Outgoing_L1Norm (per input channel) / Get_Incoming_L1Norm (per output).
    from lightning_gancomp.pruning.importance import EffectiveL1Scorer

    net = tiny_generator()
    gen = torch.Generator().manual_seed(4)
    w = net.style(torch.randn(30, net.z_dim, generator=gen))
    convs = [net.conv1, *net.convs, net.to_rgbs[-1]]
    mean_weights = []
    for styled in convs:
        conv = styled.conv
        style = conv.modulation(w).view(30, 1, -1, 1, 1)
        weight = conv.scale * conv.weight * style
        if conv.demodulate:
            weight = weight * torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + 1e-8).view(30, -1, 1, 1, 1)
        mean_weights.append(weight.mean(0))
    if direction == "outgoing":
        expected = [m.abs().sum(dim=(0, 2, 3)) for m in mean_weights]  # convs, then the last ToRGB
    else:
        expected = [None] + [m.abs().sum(dim=(1, 2, 3)) for m in mean_weights[:-1]]
    got = as_list(EffectiveL1Scorer(direction, n_samples=30, seed=4)(net), net)
    for n, (e, g) in enumerate(zip(expected, got)):
        if e is not None:
            assert torch.allclose(g, e.double(), rtol=1e-5), (direction, n)
