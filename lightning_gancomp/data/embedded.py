"""Deterministic synthetic datasets generated on the fly (no files), for quickstarts and tests.

A first run should not need a dataset download (and a machine offline cannot do one). Each item is
rendered from parameters drawn with a ``torch.Generator`` seeded by ``(seed, index)``, so item
``i`` is bit-identical across runs, workers and processes, and costs well under a millisecond at
32-64 px. Shapes are drawn from signed distance functions with a one-pixel
soft edge (anti-aliased); the content ``mask`` is the hard region ``sdf < 0`` of the foreground.

Datasets (all images [3, R, R] in [-1, 1], masks [1, R, R] in {0, 1}):

* :class:`EmbeddedImages` -- "faces": a shaded, tilted skin-coloured ellipse with hair, eyes,
  irises and a mouth over a textured gradient background; ``mask`` = the head region (what the
  CAGAN face parser would call not-background), like the content mask of content-aware pruning.
* :class:`EmbeddedClasses` -- ten classes, each a distinct shape *and* hue (circle, square,
  triangle, diamond, plus, ring, star, hexagon, crescent, bar) with random pose and shading.
* :class:`EmbeddedPairs` -- aligned pairs like edges2shoes: ``input_img`` = black outline of a
  shape on white, ``real_img`` = the same shape filled and shaded.
* :class:`EmbeddedDomains` -- unaligned domains like horse2zebra: ``input_img`` = a plain brown
  "horse" silhouette on a grass/sky scene (domain A), ``real_img`` = an independently drawn
  black-and-white striped "zebra" (domain B).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.utils.data import Dataset

from lightning_gancomp.data.errors import DatasetError

NUM_SHAPES = 10
SHAPE_NAMES = (
    "circle",
    "square",
    "triangle",
    "diamond",
    "plus",
    "ring",
    "star",
    "hexagon",
    "crescent",
    "bar",
)

# Odd 64-bit constants mixing (seed, index, stream) into one generator seed (splitmix-style).
_MIX = (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB)


def item_generator(seed: int, index: int, stream: int = 0) -> torch.Generator:
    """A CPU generator whose state depends only on (seed, index, stream)."""
    mixed = (seed * _MIX[0] + index * _MIX[1] + stream * _MIX[2] + 0x2545F491) % (2**63 - 1)
    return torch.Generator().manual_seed(mixed)


class _Sampler:
    """Scalar draws from one generator (keeps the rendering code readable)."""

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand((), generator=self.generator))

    def integer(self, high: int) -> int:
        return int(torch.randint(0, high, (), generator=self.generator))

    def sign(self) -> float:
        return 1.0 if self.uniform(0.0, 1.0) < 0.5 else -1.0


def serial_sin(angle: Tensor) -> Tensor:
    """sin(angle) from element-wise arithmetic only (float32 accuracy).

    ``torch.sin`` (like exp/cos/sqrt) runs through an OpenMP loop that splits tensors above 2048
    elements; on a busy machine each call then waits for a free core (we measured ~25 ms instead of
    ~10 us per 64x64 call in the main process). Arithmetic ops stay single-threaded at this size, so
    rendering stays fast wherever the dataset runs.
    """
    reduced = torch.remainder(angle + math.pi, 2.0 * math.pi) - math.pi  # [-pi, pi)
    reduced = torch.where(reduced > math.pi / 2, math.pi - reduced, reduced)  # fold to [-pi/2, pi/2]
    reduced = torch.where(reduced < -math.pi / 2, -math.pi - reduced, reduced)
    square = reduced * reduced
    series = torch.full_like(reduced, 1.0 / 39916800.0)  # Taylor series to x^11, Horner form
    for factorial in (362880.0, 5040.0, 120.0, 6.0, 1.0):  # 1/9!, 1/7!, 1/5!, 1/3!, 1 with alternating signs
        series = 1.0 / factorial - square * series
    return reduced * series


def pixel_grid(resolution: int) -> tuple[Tensor, Tensor]:
    """(x, y) of pixel centres in [-1, 1], shape [R, R] each; y grows downwards like image rows."""
    coords = (torch.arange(resolution, dtype=torch.float32) + 0.5) * (2.0 / resolution) - 1.0
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    return x, y


def to_local(
    x: Tensor, y: Tensor, cx: float, cy: float, angle: float, scale: float = 1.0
) -> tuple[Tensor, Tensor]:
    """Coordinates relative to a centre, rotated by -angle and divided by scale."""
    cos, sin = math.cos(angle), math.sin(angle)
    dx, dy = x - cx, y - cy
    return (cos * dx + sin * dy) / scale, (-sin * dx + cos * dy) / scale


def coverage(sdf: Tensor, resolution: int) -> Tensor:
    """Anti-aliased fill fraction from a signed distance (negative inside), one pixel of softness."""
    pixel = 2.0 / resolution
    return (0.5 - sdf / pixel).clamp(0.0, 1.0)


def ellipse_sdf(u: Tensor, v: Tensor, rx: float, ry: float) -> Tensor:
    """Approximate signed distance to an axis-aligned ellipse (exact for circles)."""
    return (torch.hypot(u / rx, v / ry) - 1.0) * min(rx, ry)


def box_sdf(u: Tensor, v: Tensor, half_w: float, half_h: float) -> Tensor:
    """Chebyshev-style signed distance to an axis-aligned box."""
    return torch.maximum(u.abs() - half_w, v.abs() - half_h)


def polygon_sdf(u: Tensor, v: Tensor, sides: int, apothem: float, phase: float) -> Tensor:
    """Signed distance (to the supporting lines) of a regular polygon."""
    farthest = u * math.cos(phase) + v * math.sin(phase)
    for k in range(1, sides):
        angle = phase + 2.0 * math.pi * k / sides
        farthest = torch.maximum(farthest, u * math.cos(angle) + v * math.sin(angle))
    return farthest - apothem


def shape_sdf(shape: int, u: Tensor, v: Tensor, size: float) -> Tensor:
    """Signed distance of one of the ten class shapes (``SHAPE_NAMES``) of radius ~``size``."""
    radius = torch.hypot(u, v)
    if shape == 0:
        return radius - size
    if shape == 1:
        return box_sdf(u, v, 0.8 * size, 0.8 * size)
    if shape == 2:
        return polygon_sdf(u, v, 3, 0.5 * size, math.pi / 2)  # apex pointing up (y down)
    if shape == 3:
        return (u.abs() + v.abs() - size) / math.sqrt(2.0)
    if shape == 4:
        return torch.minimum(box_sdf(u, v, 0.3 * size, size), box_sdf(u, v, size, 0.3 * size))
    if shape == 5:
        return (radius - 0.7 * size).abs() - 0.28 * size
    if shape == 6:
        theta = torch.atan2(v, u)
        return (radius - size * (0.62 + 0.33 * serial_sin(5.0 * theta))) * 0.6
    if shape == 7:
        return polygon_sdf(u, v, 6, 0.85 * size, 0.0)
    if shape == 8:
        bite = torch.hypot(u - 0.45 * size, v + 0.2 * size) - 0.8 * size
        return torch.maximum(radius - size, -bite)
    return box_sdf(u, v, size, 0.35 * size)


def hsv_to_rgb(hue: float, saturation: float, value: float) -> Tensor:
    """One colour as a [3, 1, 1] tensor in [0, 1]."""
    channels = []
    for n in (5.0, 3.0, 1.0):  # r, g, b of the standard HSV -> RGB closed form
        k = (n + (hue % 1.0) * 6.0) % 6.0
        channels.append(value - value * saturation * max(0.0, min(k, 4.0 - k, 1.0)))
    return torch.tensor(channels).view(3, 1, 1)


def composite(base: Tensor, colour: Tensor, alpha: Tensor) -> Tensor:
    """Paint ``colour`` ([3,1,1] or [3,R,R]) over ``base`` with coverage ``alpha`` [R, R]."""
    return base + (colour - base) * alpha.unsqueeze(0)


def textured_background(sampler: _Sampler, x: Tensor, y: Tensor, saturation: float) -> Tensor:
    """Linear two-colour gradient at a random angle plus low-frequency sinusoidal texture, [3,R,R]."""
    first = hsv_to_rgb(sampler.uniform(0, 1), saturation, sampler.uniform(0.35, 0.9))
    second = hsv_to_rgb(sampler.uniform(0, 1), saturation, sampler.uniform(0.35, 0.9))
    angle = sampler.uniform(0, 2 * math.pi)
    ramp = ((x * math.cos(angle) + y * math.sin(angle)) * 0.5 + 0.5).clamp(0, 1)
    image = first + (second - first) * ramp.unsqueeze(0)
    texture = torch.zeros_like(x)
    for _ in range(3):
        freq, phase, direction = (
            sampler.uniform(1.5, 5.0),
            sampler.uniform(0, 2 * math.pi),
            sampler.uniform(0, math.pi),
        )
        texture += serial_sin(freq * math.pi * (x * math.cos(direction) + y * math.sin(direction)) + phase)
    return image + 0.04 * texture.unsqueeze(0)


def shading(u: Tensor, v: Tensor, size: float, light_u: float, light_v: float) -> Tensor:
    """Soft spherical lighting factor in [0.55, 1.1]: bright near the light, darker away from it."""
    distance = ((u - light_u * size) ** 2 + (v - light_v * size) ** 2) / (size * size * 4.0)
    return (1.1 - 0.55 * distance).clamp(0.55, 1.1)


def to_signed(image: Tensor) -> Tensor:
    """[0, 1] colours -> [-1, 1] (clamped)."""
    return image.clamp(0.0, 1.0) * 2.0 - 1.0


# --------------------------------------------------------------------------------------------
# Renderers: (sampler, resolution) -> (image [3,R,R] in [0,1], mask [1,R,R])
# --------------------------------------------------------------------------------------------


def render_face(sampler: _Sampler, resolution: int) -> tuple[Tensor, Tensor]:
    """A stylised face: shaded head ellipse, hair cap, eyes with irises, mouth; mask = head."""
    x, y = pixel_grid(resolution)
    image = textured_background(sampler, x, y, saturation=sampler.uniform(0.1, 0.5))
    ry = sampler.uniform(0.55, 0.72)
    rx = ry * sampler.uniform(0.7, 0.85)
    u, v = to_local(
        x, y, sampler.uniform(-0.1, 0.1), sampler.uniform(-0.02, 0.12), sampler.uniform(-0.2, 0.2)
    )

    head_sdf = ellipse_sdf(u, v, rx, ry)
    head = coverage(head_sdf, resolution)
    skin = hsv_to_rgb(sampler.uniform(0.02, 0.11), sampler.uniform(0.3, 0.6), sampler.uniform(0.55, 0.95))
    image = composite(image, skin * shading(u, v, ry, -0.3, -0.4).unsqueeze(0), head)

    hair_line = -ry * sampler.uniform(0.35, 0.65) + 0.05 * ry * serial_sin(
        u / rx * 6.0 + sampler.uniform(0, 6.3)
    )
    hair_colour = hsv_to_rgb(
        sampler.uniform(0.0, 0.12), sampler.uniform(0.3, 0.8), sampler.uniform(0.08, 0.5)
    )
    image = composite(image, hair_colour, head * coverage(v - hair_line, resolution))

    eye_dx, eye_dy = rx * sampler.uniform(0.3, 0.42), -ry * sampler.uniform(0.02, 0.18)
    eye_rx, eye_ry = rx * sampler.uniform(0.14, 0.2), ry * sampler.uniform(0.06, 0.1)
    iris_colour = hsv_to_rgb(sampler.uniform(0, 1), sampler.uniform(0.4, 0.9), sampler.uniform(0.15, 0.5))
    gaze = sampler.uniform(-0.4, 0.4) * eye_rx
    for side in (-1.0, 1.0):
        white = coverage(ellipse_sdf(u - side * eye_dx, v - eye_dy, eye_rx, eye_ry), resolution)
        image = composite(image, torch.full((3, 1, 1), 0.95), white)
        iris = coverage(
            ellipse_sdf(u - side * eye_dx - gaze, v - eye_dy, eye_ry * 0.9, eye_ry * 0.9), resolution
        )
        image = composite(image, iris_colour, white * iris)

    mouth_sdf = ellipse_sdf(
        u,
        v - ry * sampler.uniform(0.4, 0.55),
        rx * sampler.uniform(0.25, 0.4),
        ry * sampler.uniform(0.04, 0.09),
    )
    lips = hsv_to_rgb(sampler.uniform(-0.03, 0.03), sampler.uniform(0.5, 0.8), sampler.uniform(0.45, 0.8))
    image = composite(image, lips, coverage(mouth_sdf, resolution))
    return image, (head_sdf < 0).float().unsqueeze(0)


def render_class_shape(
    sampler: _Sampler, resolution: int, label: int, num_classes: int
) -> tuple[Tensor, Tensor]:
    """Class ``label``: shape ``label % 10`` in the class hue, random pose/size/shading."""
    x, y = pixel_grid(resolution)
    image = textured_background(sampler, x, y, saturation=sampler.uniform(0.0, 0.15))
    hue = label / NUM_SHAPES if num_classes <= NUM_SHAPES else (label * 0.6180339887) % 1.0
    size = sampler.uniform(0.45, 0.7)
    u, v = to_local(x, y, sampler.uniform(-0.2, 0.2), sampler.uniform(-0.2, 0.2), sampler.uniform(-0.3, 0.3))
    sdf = shape_sdf(label % NUM_SHAPES, u, v, size)
    colour = hsv_to_rgb(
        hue + sampler.uniform(-0.025, 0.025), sampler.uniform(0.6, 0.9), sampler.uniform(0.75, 1.0)
    )
    lit = colour * shading(u, v, size, sampler.uniform(-0.5, 0.0), sampler.uniform(-0.5, 0.0)).unsqueeze(0)
    image = composite(image, lit, coverage(sdf, resolution))
    return image, (sdf < 0).float().unsqueeze(0)


def render_edge_pair(sampler: _Sampler, resolution: int) -> tuple[Tensor, Tensor, Tensor]:
    """(edges, filled, mask): outline of a random shape on white, and the shape filled and shaded."""
    x, y = pixel_grid(resolution)
    size = sampler.uniform(0.5, 0.75)
    shape = sampler.integer(NUM_SHAPES)
    u, v = to_local(
        x, y, sampler.uniform(-0.15, 0.15), sampler.uniform(-0.15, 0.15), sampler.uniform(-0.4, 0.4)
    )
    sdf = shape_sdf(shape, u, v, size)
    line_half_width = 1.5 / resolution  # lines ~1.5 px wide at any resolution
    edges = composite(
        torch.ones(3, resolution, resolution),
        torch.zeros(3, 1, 1),
        coverage(sdf.abs() - line_half_width, resolution),
    )
    colour = hsv_to_rgb(sampler.uniform(0, 1), sampler.uniform(0.5, 0.9), sampler.uniform(0.6, 0.95))
    lit = colour * shading(u, v, size, sampler.uniform(-0.5, 0.0), sampler.uniform(-0.5, 0.0)).unsqueeze(0)
    filled = composite(torch.full((3, resolution, resolution), 0.97), lit, coverage(sdf, resolution))
    return edges, filled, (sdf < 0).float().unsqueeze(0)


def animal_sdf(u: Tensor, v: Tensor, facing: float) -> Tensor:
    """Four-legged silhouette (body, neck, head, legs) in local units; ``facing`` = +1 right, -1 left."""
    body = ellipse_sdf(u, v, 0.45, 0.2)
    neck_u, neck_v = to_local(u, v, facing * 0.38, -0.2, facing * -0.7)
    neck = ellipse_sdf(neck_u, neck_v, 0.2, 0.08)
    head = ellipse_sdf(u - facing * 0.55, v + 0.33, 0.15, 0.09)
    union = torch.minimum(torch.minimum(body, neck), head)
    for leg_x in (-0.33, -0.2, 0.2, 0.33):
        union = torch.minimum(union, box_sdf(u - leg_x, v - 0.35, 0.045, 0.22))
    return union


def render_animal(sampler: _Sampler, resolution: int, striped: bool) -> tuple[Tensor, Tensor]:
    """Grass/sky scene with one animal: plain brown ("horse") or black-white striped ("zebra")."""
    x, y = pixel_grid(resolution)
    horizon = sampler.uniform(-0.2, 0.2)
    sky = hsv_to_rgb(sampler.uniform(0.55, 0.62), sampler.uniform(0.2, 0.6), sampler.uniform(0.7, 1.0))
    grass = hsv_to_rgb(sampler.uniform(0.22, 0.35), sampler.uniform(0.4, 0.8), sampler.uniform(0.3, 0.7))
    image = composite(sky.expand(3, resolution, resolution), grass, coverage(horizon - y, resolution))
    scale = sampler.uniform(0.8, 1.15)
    u, v = to_local(
        x, y, sampler.uniform(-0.12, 0.12), sampler.uniform(-0.05, 0.15), sampler.uniform(-0.1, 0.1), scale
    )
    sdf = animal_sdf(u, v, sampler.sign()) * scale
    if striped:
        direction = sampler.uniform(-0.4, 0.4)
        freq = sampler.uniform(14.0, 20.0)
        wave = serial_sin(
            freq * (u * math.cos(direction) + v * math.sin(direction)) + sampler.uniform(0, 6.3)
        )
        stripes = (wave * resolution / (freq * scale * 2.0) + 0.5).clamp(0, 1)  # anti-aliased square wave
        coat = stripes.unsqueeze(0).expand(3, -1, -1) * 0.92 + 0.04
    else:
        coat = hsv_to_rgb(sampler.uniform(0.04, 0.1), sampler.uniform(0.5, 0.8), sampler.uniform(0.35, 0.7))
    lit = coat * shading(u, v, 0.5, -0.4, -0.6).unsqueeze(0)
    image = composite(image, lit, coverage(sdf, resolution))
    return image, (sdf < 0).float().unsqueeze(0)


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------


class _EmbeddedDataset(Dataset):
    """Shared length/resolution/seed handling and index checks."""

    def __init__(self, length: int, resolution: int, seed: int) -> None:
        if length < 1:
            raise DatasetError(f"embedded dataset length must be >= 1, got {length}")
        if resolution < 8:
            raise DatasetError(f"embedded dataset resolution must be >= 8, got {resolution}")
        self.length = length
        self.resolution = resolution
        self.seed = seed

    def __len__(self) -> int:
        return self.length

    def _check_index(self, index: int) -> int:
        if index < 0:
            index += self.length
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {type(self).__name__} of length {self.length}")
        return index


class EmbeddedImages(_EmbeddedDataset):
    """Synthetic "faces" for unconditional GANs. Items: ``real_img`` [3,R,R], ``mask`` [1,R,R] (head)."""

    def __init__(self, length: int = 10_000, resolution: int = 64, seed: int = 0) -> None:
        super().__init__(length, resolution, seed)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        index = self._check_index(index)
        image, mask = render_face(_Sampler(item_generator(self.seed, index)), self.resolution)
        return {"real_img": to_signed(image), "mask": mask}


class EmbeddedClasses(_EmbeddedDataset):
    """Ten (or ``num_classes``) shape/hue classes; label = ``index % num_classes`` (balanced).

    Items: ``real_img``, ``label`` (long scalar), ``mask`` (the shape).
    """

    def __init__(
        self, length: int = 10_000, resolution: int = 64, num_classes: int = 10, seed: int = 0
    ) -> None:
        super().__init__(length, resolution, seed)
        if num_classes < 1:
            raise DatasetError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        index = self._check_index(index)
        label = index % self.num_classes
        sampler = _Sampler(item_generator(self.seed, index, stream=1))
        image, mask = render_class_shape(sampler, self.resolution, label, self.num_classes)
        return {"real_img": to_signed(image), "label": torch.tensor(label, dtype=torch.long), "mask": mask}


class EmbeddedPairs(_EmbeddedDataset):
    """Aligned edges -> filled shape. Items: ``input_img`` (edges), ``real_img`` (filled), ``mask``."""

    def __init__(self, length: int = 10_000, resolution: int = 64, seed: int = 0) -> None:
        super().__init__(length, resolution, seed)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        index = self._check_index(index)
        edges, filled, mask = render_edge_pair(
            _Sampler(item_generator(self.seed, index, stream=2)), self.resolution
        )
        return {"input_img": to_signed(edges), "real_img": to_signed(filled), "mask": mask}


class EmbeddedDomains(_EmbeddedDataset):
    """Unaligned horse -> zebra-like domains.

    Items: ``input_img`` (domain A: plain animal), ``real_img`` (domain B: striped animal, drawn
    with independent parameters, so the pair is not aligned), ``mask`` (the B animal).
    """

    def __init__(self, length: int = 10_000, resolution: int = 64, seed: int = 0) -> None:
        super().__init__(length, resolution, seed)

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        index = self._check_index(index)
        image_a, _ = render_animal(
            _Sampler(item_generator(self.seed, index, stream=3)), self.resolution, striped=False
        )
        image_b, mask_b = render_animal(
            _Sampler(item_generator(self.seed, index, stream=4)), self.resolution, striped=True
        )
        return {"input_img": to_signed(image_a), "real_img": to_signed(image_b), "mask": mask_b}
