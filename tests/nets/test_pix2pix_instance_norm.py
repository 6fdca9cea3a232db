"""The ResNet/U-Net generators' instance norm runs as a per-channel group norm (faster on CPU):
it must equal ``nn.InstanceNorm2d`` in values and gradients, and keep its state dict."""

import torch
from torch import nn

from lightning_gancomp.nets.pix2pix import InstanceNorm2d, ResnetGenerator


def test_equals_torch_instance_norm_values_and_gradients():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 9, 7, dtype=torch.float64) * 3 + 1
    ours, reference = InstanceNorm2d(5), nn.InstanceNorm2d(5)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    out_a, out_b = ours(a), reference(b)
    assert torch.allclose(out_a, out_b, atol=1e-12)
    weights = torch.randn_like(out_a)
    (out_a * weights).sum().backward()
    (out_b * weights).sum().backward()
    assert torch.allclose(a.grad, b.grad, atol=1e-10)


def test_affine_and_unbatched_input_follow_the_parent():
    torch.manual_seed(1)
    ours, reference = InstanceNorm2d(4, affine=True), nn.InstanceNorm2d(4, affine=True)
    with torch.no_grad():
        reference.weight.uniform_(0.5, 2)
        reference.bias.normal_()
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(2, 4, 6, 6)
    assert torch.allclose(ours(x), reference(x), atol=1e-5)
    assert torch.allclose(ours(x[0]), reference(x[0]), atol=1e-5)  # [C, H, W]


def test_resnet_generator_uses_it_and_matches_the_reference_norm():
    torch.manual_seed(2)
    net = ResnetGenerator(ngf=4, n_blocks=2, norm="instance").eval()
    assert any(type(m) is InstanceNorm2d for m in net.modules())
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    fast = net(x)
    for module in list(net.modules()):
        for child_name, child in list(module.named_children()):
            if type(child) is InstanceNorm2d:
                setattr(module, child_name, nn.InstanceNorm2d(child.num_features))
    assert torch.allclose(fast, net(x), atol=1e-5)
