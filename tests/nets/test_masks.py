"""PPCD-GAN learnable masks: eq. 1 (mask value), eq. 2 (ℓ_PP), eq. 3 (binarization trick and
freeze), eq. 5 (L_PP over several layers), on hand-computed values."""

import math

import pytest
import torch

from lightning_gancomp.nets.masks import (
    LearnableMask,
    binarize,
    mask_value,
    masked_share,
    pp_sparsity,
    progressive_pruning_loss,
)


def _mask_with(weights, delta=1e3):
    mask = LearnableMask(len(weights), delta=delta)
    with torch.no_grad():
        mask.weight.copy_(torch.tensor(weights))
    return mask


def test_eq1_mask_value_is_a_sharp_sigmoid():
    w = torch.tensor([0.0, 0.001, -0.002, 0.01])
    expected = [0.5, 1 / (1 + math.exp(-1)), 1 / (1 + math.exp(2)), 1 / (1 + math.exp(-10))]
    torch.testing.assert_close(mask_value(w, 1e3), torch.tensor(expected))
    torch.testing.assert_close(mask_value(w, 1.0), torch.sigmoid(w))


def test_initial_value_is_the_requested_mask_value():
    mask = LearnableMask(3, delta=1e3, init_value=0.99)
    torch.testing.assert_close(mask.values(), torch.full((3,), 0.99))
    assert mask.weight[0].item() == pytest.approx(math.log(99) / 1e3)


def test_eq2_sparsity_is_sum_of_abs_w_plus_one_and_pulls_w_to_minus_one():
    w = torch.tensor([0.5, -1.0, -3.0], requires_grad=True)
    value = pp_sparsity(w)
    assert value.item() == pytest.approx(1.5 + 0.0 + 2.0)
    value.backward()
    assert w.grad.tolist() == [1.0, 0.0, -1.0]  # sign(w + 1): towards -1 from both sides


def _values(below: int, n: int = 10) -> torch.Tensor:
    # ``below`` values at or under the pivot (one exactly at it), the rest above it
    low = [0.005] + [0.001] * (below - 1) if below else []
    return torch.tensor(low + [0.006] + [0.9] * (n - below - 1))


def test_eq3_binarization_below_at_and_above_alpha():
    assert masked_share(_values(7), 0.005).item() == pytest.approx(0.7)  # m <= pivot counts
    assert binarize(_values(6), alpha=0.7) is None  # ratio 0.6 < α
    assert binarize(_values(7), alpha=0.7) is None  # ratio 0.7 = α: eq. 3 needs ratio > α
    binary = binarize(_values(8), alpha=0.7)  # ratio 0.8 > α
    assert binary is not None
    assert binary.tolist() == [0.0] * 8 + [1.0, 1.0]  # 0.006 > pivot -> 1, 0.005 -> 0


def test_eq3_keeps_min_keep_largest_when_everything_is_below_the_pivot():
    values = torch.tensor([0.001, 0.004, 0.002])
    assert binarize(values, alpha=0.5, min_keep=1).tolist() == [0.0, 1.0, 0.0]
    assert binarize(values, alpha=0.5, min_keep=0).tolist() == [0.0, 0.0, 0.0]


def test_freeze_fixes_values_and_stops_gradients():
    logit = lambda m: math.log(m / (1 - m)) / 1e3  # noqa: E731
    weights = [logit(0.001)] * 3 + [logit(0.004), logit(0.3)]
    mask = _mask_with(weights)
    assert not mask.maybe_freeze(alpha=0.8)  # ratio 0.8 is not > 0.8
    assert not mask.is_frozen
    assert mask.maybe_freeze(alpha=0.7)
    assert mask.is_frozen and mask.values().tolist() == [0.0, 0.0, 0.0, 0.0, 1.0]
    assert not mask.maybe_freeze(alpha=0.0)  # already frozen
    x = torch.ones(1, 5, 2, 2)
    loss = mask(x).sum() + mask.sparsity()
    assert not loss.requires_grad  # "we then stop update the mask": no gradient reaches w
    assert mask.weight.requires_grad  # the optimizer's parameter list does not change
    assert mask.sparsity().item() == pytest.approx(sum(abs(w + 1) for w in weights), rel=1e-6)


def test_frozen_state_survives_a_state_dict_round_trip():
    mask = _mask_with([-0.1, -0.1, 0.1])
    mask.maybe_freeze(alpha=0.5)
    other = LearnableMask(3)
    other.load_state_dict(mask.state_dict())
    assert other.is_frozen and other.values().tolist() == [0.0, 0.0, 1.0]


def test_mask_multiplies_channels():
    mask = _mask_with([0.0, 0.002])
    x = torch.full((2, 2, 3, 3), 2.0)
    out = mask(x)
    assert torch.allclose(out[:, 0], torch.full((2, 3, 3), 1.0))
    assert torch.allclose(out[:, 1], torch.full((2, 3, 3), 2 / (1 + math.exp(-2))))


def test_eq5_loss_is_the_mean_of_eq2_over_layers_with_gradient():
    first = _mask_with([0.0, 0.0])  # ℓ_PP = 2
    second = _mask_with([-1.0, 1.0, 0.5])  # ℓ_PP = 0 + 2 + 1.5 = 3.5
    loss = progressive_pruning_loss([first, second])
    assert loss.item() == pytest.approx((2.0 + 3.5) / 2)
    loss.backward()
    assert first.weight.grad.tolist() == [0.5, 0.5]  # sign(w + 1) / (2N), 2N = 2 layers
    assert second.weight.grad.tolist() == [0.0, 0.5, 0.5]
    with pytest.raises(ValueError):
        progressive_pruning_loss([])
