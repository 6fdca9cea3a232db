"""Small GanNets for the pruning-engine tests: a residual conv chain with batch norm, two
branches and a fixed channel read through one concatenation, a StyleGAN2-like net (equalized
lr, modulated/demodulated convs, constant input, activation biases, noise, ToRGB), a
spectral-norm chain with stored ``u0`` vectors, and two planted nets
whose channels are built to carry content / latent-driven variation (or not)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from lightning_gancomp.nets.base import ChannelGroup, GanNet, TensorSlice


class ResidualChain(GanNet):
    """x -> conv_in -> [stream += conv_b(relu(bn(conv_a(stream))))] * n -> conv_out (image2image)."""

    task = "image2image"
    in_channels = 3
    out_channels = 3

    def __init__(self, stream: int = 8, hidden: list[int] | None = None) -> None:
        super().__init__()
        hidden = list(hidden or [6, 5])
        self.conv_in = nn.Conv2d(3, stream, 3, padding=1)
        self.blocks = nn.ModuleList()
        for h in hidden:
            self.blocks.append(
                nn.ModuleDict(
                    {
                        "a": nn.Conv2d(stream, h, 3, padding=1),
                        "bn": nn.BatchNorm2d(h),
                        "b": nn.Conv2d(h, stream, 1),
                    }
                )
            )
        self.conv_out = nn.Conv2d(stream, 3, 3, padding=1)

    def forward(self, x):
        s = self.conv_in(x)
        for blk in self.blocks:
            s = s + blk["b"](torch.relu(blk["bn"](blk["a"](s))))
        return torch.tanh(self.conv_out(s))

    def channel_groups(self):
        stream = [TensorSlice("conv_in.weight", 0, "out"), TensorSlice("conv_in.bias", 0, "out")]
        groups = []
        for i, blk in enumerate(self.blocks):
            stream += [
                TensorSlice(f"blocks.{i}.a.weight", 1, "in"),
                TensorSlice(f"blocks.{i}.b.weight", 0, "out"),
                TensorSlice(f"blocks.{i}.b.bias", 0, "out"),
            ]
            bn = [
                TensorSlice(f"blocks.{i}.bn.{k}", 0, "aux")
                for k in ("weight", "bias", "running_mean", "running_var")
            ]
            groups.append(
                ChannelGroup(
                    f"block{i}.hidden",
                    blk["a"].out_channels,
                    (
                        TensorSlice(f"blocks.{i}.a.weight", 0, "out"),
                        TensorSlice(f"blocks.{i}.a.bias", 0, "out"),
                        *bn,
                        TensorSlice(f"blocks.{i}.b.weight", 1, "in"),
                    ),
                )
            )
        stream.append(TensorSlice("conv_out.weight", 1, "in"))
        return [ChannelGroup("stream", self.conv_in.out_channels, tuple(stream)), *groups]

    def config_for_group_sizes(self, sizes):
        hidden = [sizes.get(f"block{i}.hidden", b["a"].out_channels) for i, b in enumerate(self.blocks)]
        return {**self.config, "stream": sizes.get("stream", self.conv_in.out_channels), "hidden": hidden}


class ConcatReader(GanNet):
    """Two branches and one fixed channel read through one concatenation.

    ``h = cat([relu(conv_a(x)), mean_rgb(x), relu(conv_b(x))])`` (the middle channel belongs to
    no group, like StyleGAN2's minibatch-stddev channel); ``reader`` is an equalized-lr conv
    (runtime scale ``1/sqrt(fan_in)``, fan_in over all ``a + 1 + b`` inputs) and ``head`` a
    Linear on the 2x2-pooled, flattened ``h`` (4 entries per channel: ``block=4``). Groups
    ``a`` and ``b`` own windows at offsets 0 and ``a + 1`` of both readers.
    """

    task = "image2image"
    in_channels = 3
    out_channels = 3

    def __init__(self, a: int = 5, b: int = 4) -> None:
        super().__init__()
        self.a, self.b = a, b
        self.conv_a = nn.Conv2d(3, a, 3, padding=1)
        self.conv_b = nn.Conv2d(3, b, 3, padding=1)
        self.reader_weight = nn.Parameter(torch.randn(3, a + 1 + b, 3, 3))
        self.head = nn.Linear((a + 1 + b) * 4, 3)

    def concatenated(self, x):
        return torch.cat([torch.relu(self.conv_a(x)), x.mean(1, keepdim=True), torch.relu(self.conv_b(x))], 1)

    def forward(self, x):
        h = self.concatenated(x)
        fan_in = self.reader_weight[0].numel()
        out = F.conv2d(h, self.reader_weight / math.sqrt(fan_in), padding=1)
        return out + self.head(F.adaptive_avg_pool2d(h, 2).flatten(1))[:, :, None, None]

    def _branch(self, name: str, size: int, offset: int) -> ChannelGroup:
        return ChannelGroup(
            name,
            size,
            (
                TensorSlice(f"conv_{name}.weight", 0, "out"),
                TensorSlice(f"conv_{name}.bias", 0, "aux"),
                TensorSlice("reader_weight", 1, "in", equalized_fan_in=True, offset=offset),
                TensorSlice("head.weight", 1, "in", block=4, offset=offset * 4),
            ),
        )

    def channel_groups(self):
        return [self._branch("a", self.a, 0), self._branch("b", self.b, self.a + 1)]

    def config_for_group_sizes(self, sizes):
        return {**self.config, "a": sizes.get("a", self.a), "b": sizes.get("b", self.b)}


class ModConv(nn.Module):
    """Modulated conv with equalized lr (weight [1,out,in,k,k], scale 1/sqrt(in·k²))."""

    def __init__(self, cin: int, cout: int, w_dim: int, k: int = 3, demod: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(1, cout, cin, k, k))
        self.mod_weight = nn.Parameter(torch.randn(cin, w_dim))
        self.mod_bias = nn.Parameter(torch.ones(cin) + 0.1 * torch.randn(cin))
        self.demod, self.k, self.w_dim = demod, k, w_dim

    def forward(self, x, w):
        b, cin, h, wd = x.shape
        style = F.linear(w, self.mod_weight / math.sqrt(self.w_dim), self.mod_bias)  # [B, in]
        weight = self.weight / math.sqrt(cin * self.k**2) * style[:, None, :, None, None]
        if self.demod:
            weight = weight * torch.rsqrt(weight.pow(2).sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        weight = weight.reshape(-1, cin, self.k, self.k)
        out = F.conv2d(x.reshape(1, -1, h, wd), weight, padding=self.k // 2, groups=b)
        return out.reshape(b, -1, h, wd)


class ToyStyleGenerator(GanNet):
    """StyleGAN2-shaped toy: const 4x4 → modulated convs (one upsample) → ToRGB on the last map.

    ``channels`` = one width per feature map (CAGAN net_shape convention).
    """

    task = "unconditional"
    style_based = True

    def __init__(self, channels: list[int] | None = None, z_dim: int = 8, w_dim: int = 8) -> None:
        super().__init__()
        self.channels = list(channels or [6, 5, 7, 4])
        self.z_dim, self.w_dim, self.resolution = z_dim, w_dim, 8
        self.n_latent = 1
        self.map_weight = nn.Parameter(torch.randn(w_dim, z_dim))
        self.map_bias = nn.Parameter(torch.zeros(w_dim))
        self.input = nn.Parameter(torch.randn(1, self.channels[0], 4, 4))
        self.convs = nn.ModuleList(
            ModConv(a, b, w_dim) for a, b in zip(self.channels[:-1], self.channels[1:])
        )
        self.noise_weights = nn.Parameter(0.1 * torch.ones(len(self.convs)))
        self.act_bias = nn.ParameterList(nn.Parameter(0.1 * torch.randn(c)) for c in self.channels[1:])
        self.to_rgb = ModConv(self.channels[-1], 3, w_dim, k=1, demod=False)
        self.rgb_bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def mapping(self, z):
        z = z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)
        return F.leaky_relu(
            F.linear(z, self.map_weight / math.sqrt(self.z_dim), self.map_bias), 0.2
        ) * math.sqrt(2)

    def make_noise(self, batch: int = 1, device=None):
        sizes = [4] + [8] * (len(self.convs) - 1)
        return [torch.randn(batch, 1, s, s, device=device) for s in sizes]

    def forward(
        self,
        styles,
        *,
        input_is_latent=False,
        noise=None,
        randomize_noise=True,
        truncation=1.0,
        truncation_latent=None,
        return_latents=False,
    ):
        if isinstance(styles, (list, tuple)):
            styles = styles[0]
        w = styles if input_is_latent else self.mapping(styles)
        if noise is None:
            noise = self.make_noise(w.shape[0], w.device)
        x = self.input.expand(w.shape[0], -1, -1, -1)
        for i, conv in enumerate(self.convs):
            if i == 1:
                x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = conv(x, w) + self.noise_weights[i] * noise[i]
            x = F.leaky_relu(x + self.act_bias[i][None, :, None, None], 0.2) * math.sqrt(2)
        return self.to_rgb(x, w) + self.rgb_bias

    def channel_groups(self):
        groups = []
        for i, size in enumerate(self.channels):
            members = []
            if i == 0:
                members.append(TensorSlice("input", 1, "out"))
            else:
                members += [
                    TensorSlice(f"convs.{i - 1}.weight", 1, "out"),
                    TensorSlice(f"act_bias.{i - 1}", 0, "aux"),
                ]
            reader = f"convs.{i}" if i < len(self.convs) else "to_rgb"
            members += [
                TensorSlice(f"{reader}.weight", 2, "in", equalized_fan_in=True),
                TensorSlice(f"{reader}.mod_weight", 0, "aux"),
                TensorSlice(f"{reader}.mod_bias", 0, "aux"),
            ]
            groups.append(ChannelGroup(f"map{i}", size, tuple(members), score_keys=(f"{reader}.weight",)))
        return groups

    def config_for_group_sizes(self, sizes):
        return {**self.config, "channels": [sizes.get(f"map{i}", c) for i, c in enumerate(self.channels)]}


class SNConv(nn.Module):
    """Spectral-norm conv with a stored left singular vector ``u0`` [1, out] (BigGAN style, eval)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, 3, 3))
        self.bias = nn.Parameter(torch.randn(cout) * 0.1)
        self.register_buffer("u0", F.normalize(torch.randn(1, cout), dim=1))

    def forward(self, x):
        w = self.weight.reshape(self.weight.shape[0], -1)
        v = F.normalize(self.u0 @ w, dim=1)
        u = F.normalize(v @ w.t(), dim=1)
        sigma = (u @ w @ v.t()).squeeze()
        return F.conv2d(x, self.weight / sigma, self.bias, padding=1)


class SNChain(GanNet):
    """Unconditional: z -> linear -> [C0,4,4] -> SN convs -> tanh; groups on every hidden map."""

    task = "unconditional"

    def __init__(self, z_dim: int = 6, widths: list[int] | None = None) -> None:
        super().__init__()
        self.widths = list(widths or [5, 6, 4])
        self.z_dim, self.resolution = z_dim, 8
        self.fc = nn.Linear(z_dim, self.widths[0] * 16)
        self.convs = nn.ModuleList(SNConv(a, b) for a, b in zip(self.widths[:-1], self.widths[1:]))
        self.out = SNConv(self.widths[-1], 3)

    def forward(self, z):
        x = self.fc(z).reshape(z.shape[0], self.widths[0], 4, 4)
        x = F.interpolate(x, scale_factor=2)
        for conv in self.convs:
            x = torch.relu(conv(x))
        return torch.tanh(self.out(x))

    def channel_groups(self):
        groups = [
            ChannelGroup(
                "h0",
                self.widths[0],
                (
                    TensorSlice("fc.weight", 0, "out", block=16),
                    TensorSlice("fc.bias", 0, "out", block=16),
                    TensorSlice("convs.0.weight", 1, "in"),
                ),
            )
        ]
        for i in range(1, len(self.widths)):
            reader = f"convs.{i}" if i < len(self.convs) else "out"
            groups.append(
                ChannelGroup(
                    f"h{i}",
                    self.widths[i],
                    (
                        TensorSlice(f"convs.{i - 1}.weight", 0, "out"),
                        TensorSlice(f"convs.{i - 1}.bias", 0, "out"),
                        TensorSlice(f"convs.{i - 1}.u0", 1, "aux"),
                        TensorSlice(f"{reader}.weight", 1, "in"),
                    ),
                )
            )
        return groups

    def config_for_group_sizes(self, sizes):
        return {**self.config, "widths": [sizes.get(f"h{i}", c) for i, c in enumerate(self.widths)]}


class PlantedContentGenerator(GanNet):
    """Hidden channels 0..n_content-1 live only inside the centre square, the others only outside.

    h_c(x) = relu(a_c(z)) · pattern_c(x); img = 1x1 conv(h). Background channels get large
    consumer weights, so L1 prefers them; content-aware scoring (noise only in the centre) must
    prefer the content channels.
    """

    task = "unconditional"

    def __init__(self, z_dim: int = 8, hidden: int = 8, n_content: int = 4, resolution: int = 8) -> None:
        super().__init__()
        self.z_dim, self.resolution = z_dim, resolution
        self.fc = nn.Linear(z_dim, hidden)
        centre = centre_mask(resolution)[0, 0]
        pattern = torch.stack([centre if c < n_content else 1 - centre for c in range(hidden)])
        self.register_buffer("pattern", pattern)  # [hidden, H, W]
        self.to_rgb = nn.Conv2d(hidden, 3, 1)
        with torch.no_grad():
            self.to_rgb.weight[:, n_content:] *= 10.0

    def forward(self, z):
        a = torch.relu(self.fc(z)) + 0.5
        h = a[:, :, None, None] * self.pattern[None]
        return torch.tanh(self.to_rgb(h))

    def channel_groups(self):
        return [
            ChannelGroup(
                "hidden",
                self.fc.out_features,
                (
                    TensorSlice("fc.weight", 0, "out"),
                    TensorSlice("fc.bias", 0, "out"),
                    TensorSlice("pattern", 0, "aux"),
                    TensorSlice("to_rgb.weight", 1, "in"),
                ),
            )
        ]

    def config_for_group_sizes(self, sizes):
        return {**self.config, "hidden": sizes.get("hidden", self.fc.out_features)}


def centre_mask(resolution: int, batch: int = 1) -> torch.Tensor:
    m = torch.zeros(batch, 1, resolution, resolution)
    q = resolution // 4
    m[..., q : resolution - q, q : resolution - q] = 1.0
    return m


class CentreMask:
    """Content-mask provider for the planted content test."""

    def __call__(self, img):
        return centre_mask(img.shape[-1], img.shape[0]).to(img)

    def describe(self):
        return {"name": "centre"}


class PlantedDiversityGenerator(GanNet):
    """Channels 0..n_driven-1 follow the latent (h_c = w_c, spatially flat); the others are a fixed
    zero-mean spatial pattern independent of w, read through *large* weights.

    An image difference caused by a latent offset is spatially flat, so its gradient on the
    weights reading a zero-mean pattern is exactly zero: DCP keeps the driven channels, while L1
    magnitude keeps the big-weight constant channels (it cannot see diversity).
    """

    task = "unconditional"
    style_based = True

    def __init__(self, z_dim: int = 8, hidden: int = 8, n_driven: int = 4, resolution: int = 8) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.resolution, self.n_latent = z_dim, z_dim, resolution, 1
        self.hidden, self.n_driven = hidden, n_driven
        # anisotropic latent: coordinate c has std scale_c (PCA directions = coordinates)
        self.register_buffer("latent_scale", torch.linspace(2.0, 1.0, z_dim))
        gen = torch.Generator().manual_seed(1)
        pattern = torch.randn(hidden, resolution, resolution, generator=gen)
        pattern = pattern - pattern.mean(dim=(1, 2), keepdim=True)
        pattern[:n_driven] = 0.0
        self.register_buffer("pattern", pattern)
        self.to_rgb = nn.Conv2d(hidden, 3, 1)
        with torch.no_grad():
            self.to_rgb.weight[:, n_driven:] *= 20.0

    def mapping(self, z):
        return z * self.latent_scale

    def make_noise(self, batch: int = 1, device=None):
        return []

    def forward(self, styles, *, input_is_latent=False, noise=None, randomize_noise=True, **_unused):
        if isinstance(styles, (list, tuple)):
            styles = styles[0]
        w = styles if input_is_latent else self.mapping(styles)
        rest = w.new_zeros(w.shape[0], self.hidden - self.n_driven)
        driven = torch.cat([w[:, : self.n_driven], rest], dim=1)  # out of place: vmap-friendly
        h = driven[:, :, None, None] + self.pattern[None]
        return self.to_rgb(h)

    def channel_groups(self):
        return [
            ChannelGroup(
                "hidden",
                self.hidden,
                (TensorSlice("pattern", 0, "aux"), TensorSlice("to_rgb.weight", 1, "in")),
            )
        ]

    def config_for_group_sizes(self, sizes):
        return {**self.config, "hidden": sizes.get("hidden", self.hidden)}
