"""The teachers shipped in lightning_gancomp/assets/teachers/ (issue 13): intact, loadable by the
configs that name them, and trained (far better than the same architecture at initialisation)."""

from __future__ import annotations

import glob
import hashlib
import os

import pytest
import torch
import yaml

from lightning_gancomp.checkpoints import CheckpointError, load_discriminator, load_generator
from lightning_gancomp.data.embedded import EmbeddedClasses, EmbeddedDomains, EmbeddedImages, EmbeddedPairs
from lightning_gancomp.metrics import GenerativeMetrics
from lightning_gancomp.nets.base import NET_REGISTRY
from lightning_gancomp.nets.contract import run_generator, sample_inputs
from lightning_gancomp.pretrained import TEACHER_DIR, resolve_checkpoint_path, shipped_teachers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = sorted(shipped_teachers())
EXPECTED = {
    "stylegan2_embedded",
    "sngan_embedded",
    "biggan_embedded",
    "pix2pix_embedded",
    "cyclegan_embedded",
}


def test_every_family_has_a_shipped_teacher():
    assert EXPECTED <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_manifest_entry_matches_its_file(name):
    entry = shipped_teachers()[name]
    path = resolve_checkpoint_path(f"builtin:{name}")
    with open(path, "rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == entry["sha256"]
    assert os.path.getsize(path) < 8e6  # "a few MB"
    assert entry["command"].startswith("gancomp fit -c configs/teacher/")
    words = entry["command"].split()
    for config in [words[i + 1] for i, word in enumerate(words) if word == "-c"]:
        assert os.path.isfile(os.path.join(REPO, config)), config
    for key in ("config", "grid"):
        assert os.path.isfile(os.path.join(TEACHER_DIR, entry[key]))
    assert entry["batches"] > 0 and entry["metrics"]


def test_unknown_builtin_name_is_one_line_listing_the_shipped_ones():
    with pytest.raises(CheckpointError, match="no such shipped teacher .*builtin:stylegan2_embedded"):
        load_generator("builtin:stylegan3")


def builtin_references() -> list[tuple[str, str, dict, str]]:
    """(config, role, architecture spec, builtin name) for every ``builtin:`` path in configs/."""
    found = []
    for path in sorted(glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"), recursive=True)):
        with open(path) as handle:
            args = ((yaml.safe_load(handle) or {}).get("model") or {}).get("init_args") or {}
        for role, spec_key, path_key in (
            ("generator", "teacher", "teacher_path"),
            ("discriminator", "discriminator", "discriminator_path"),
        ):
            ref = args.get(path_key)
            if isinstance(ref, str) and ref.startswith("builtin:") and isinstance(args.get(spec_key), dict):
                found.append((os.path.relpath(path, REPO), role, args[spec_key], ref))
    return found


REFERENCES = builtin_references()


def test_the_embedded_compression_configs_start_from_shipped_teachers():
    names = {ref for *_, ref in REFERENCES}
    assert {"builtin:stylegan2_embedded", "builtin:sngan_embedded", "builtin:biggan_embedded"} <= names


@pytest.mark.parametrize(
    ("config", "role", "spec", "ref"), REFERENCES, ids=[f"{c}:{r}" for c, r, *_ in REFERENCES]
)
def test_config_architecture_equals_the_shipped_network(config, role, spec, ref):
    """The architecture a config writes beside ``builtin:`` is the shipped one (widths included)."""
    cls = NET_REGISTRY[spec["class_path"].rsplit(".", 1)[1]]
    with torch.device("meta"):
        expected = cls(**spec.get("init_args", {}))
    loaded = (load_generator if role == "generator" else load_discriminator)(ref)
    assert type(loaded) is cls
    assert loaded.config == expected.config


def fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    metrics = GenerativeMetrics(metrics=("fid",), feature_extractor="embedded")
    metrics.update(real, real=True)
    metrics.update(fake.clamp(-1, 1), real=False)
    return metrics.compute()["fid"]


def samples(net, count: int) -> torch.Tensor:
    with torch.no_grad():
        return run_generator(net, sample_inputs(net, count, generator=torch.Generator().manual_seed(1)))


@pytest.mark.parametrize(
    ("name", "dataset"),
    [
        ("stylegan2_embedded", EmbeddedImages),
        ("sngan_embedded", EmbeddedImages),
        ("biggan_embedded", EmbeddedClasses),
    ],
)
def test_shipped_generator_is_trained(name, dataset):
    """FID on 256 samples: the shipped weights vs the same architecture at initialisation."""
    torch.manual_seed(0)
    teacher = load_generator(f"builtin:{name}").eval()
    untrained = type(teacher)(**teacher.config).eval()
    data = dataset(length=256, resolution=teacher.example_resolution(), seed=7)
    real = torch.stack([data[i]["real_img"] for i in range(len(data))])
    trained_fid, random_fid = fid(real, samples(teacher, 256)), fid(real, samples(untrained, 256))
    assert trained_fid < 0.5 * random_fid, (trained_fid, random_fid)


def batch_of(dataset) -> dict[str, torch.Tensor]:
    return {
        key: torch.stack([dataset[i][key] for i in range(len(dataset))]) for key in ("input_img", "real_img")
    }


def test_shipped_pix2pix_is_trained():
    """pix2pix maps outlines to filled shapes: its L1 to the paired target is far below an
    untrained net's."""
    teacher = load_generator("builtin:pix2pix_embedded").eval()
    batch = batch_of(EmbeddedPairs(length=64, resolution=32, seed=7))
    with torch.no_grad():
        trained = (teacher(batch["input_img"]) - batch["real_img"]).abs().mean()
        untrained = (
            (type(teacher)(**teacher.config).eval()(batch["input_img"]) - batch["real_img"]).abs().mean()
        )
    assert trained < 0.5 * untrained, (trained, untrained)


def brown_share(images: torch.Tensor) -> float:
    """Share of brown pixels (the domain-A "horse"): red well above blue and above green."""
    red, green, blue = images[:, 0], images[:, 1], images[:, 2]
    return float(((red - blue > 0.25) & (red > green)).float().mean())


def grey_share(images: torch.Tensor) -> float:
    """Share of colourless pixels (the black-and-white stripes of domain B)."""
    return float(((images.amax(1) - images.amin(1)) < 0.1).float().mean())


def test_shipped_cyclegan_turns_horses_into_zebras():
    """Unpaired horse -> zebra: the brown animal of domain A is (mostly) gone and black/white
    pixels appear (an untrained net of the same architecture makes the images browner)."""
    teacher = load_generator("builtin:cyclegan_embedded").eval()
    batch = batch_of(EmbeddedDomains(length=128, resolution=32, seed=7))
    with torch.no_grad():
        translated = teacher(batch["input_img"])
    assert brown_share(translated) < 0.25 * brown_share(batch["input_img"])
    assert grey_share(translated) > 3 * grey_share(batch["input_img"])
