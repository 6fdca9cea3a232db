"""On-disk formats: tiny real files in every layout, read back with known values, labels, splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_files import (
    encode,
    noise_image,
    save,
    side_by_side,
    solid,
    write_biggan_hdf5,
    write_lsun_lmdb,
    write_nvlabs_zip,
    write_rosinality_lmdb,
)
from PIL import Image

from lightning_gancomp.data import (
    AlignedDataset,
    BigGANHDF5Dataset,
    BigGANTransform,
    ClassFolderDataset,
    ConditionalDataModule,
    ImageFolderDataset,
    LSUNLMDBDataset,
    NVLabsDataset,
    PairedDataModule,
    Pix2PixTransform,
    RosinalityLMDBDataset,
    StyleGAN2Transform,
    UnalignedDataset,
    UnconditionalDataModule,
    UnpairedDataModule,
    detect_format,
)


def as_tensor(img: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(img.convert("RGB")).copy()).permute(2, 0, 1).float() / 127.5 - 1


def colour_of(t: torch.Tensor) -> list[int]:
    return ((t.mean((1, 2)) + 1) * 127.5).round().int().tolist()


# ------------------------------------------------------------------------------------------ folders


def test_image_folder_is_recursive_sorted_and_exact_for_png(tmp_path):
    images = {
        "b/x.png": noise_image(1, 8, 8),
        "a.PNG": noise_image(2, 8, 8),
        "b/a/c.png": noise_image(3, 8, 8),
    }
    for name, img in images.items():
        save(img, tmp_path / name, "PNG")
    (tmp_path / "notes.txt").write_text("not an image")
    data = ImageFolderDataset(str(tmp_path), StyleGAN2Transform(8, hflip=False), verify="full")
    assert data.files == ["a.PNG", "b/a/c.png", "b/x.png"]
    for index, name in enumerate(data.files):
        item = data[index]
        assert set(item) == {"real_img"}
        assert torch.equal(item["real_img"], as_tensor(images[name]))  # lossless, x / 127.5 - 1


def test_stylegan2_transform_resizes_and_centre_crops_and_flips():
    img = Image.new("RGB", (48, 16), (0, 0, 255))
    img.paste(solid((255, 0, 0), 32, 16), (8, 0))  # blue 8 px strips left and right
    out = StyleGAN2Transform(4, hflip=False)(img)  # 12x4 after resizing, centre 4x4 is red
    assert out.shape == (3, 4, 4) and np.allclose(colour_of(out), [255, 0, 0], atol=2)
    ramp = Image.fromarray(np.tile(np.arange(0, 256, 32, dtype=np.uint8)[None, :, None], (8, 1, 3)))
    flips = {round(StyleGAN2Transform(8, hflip=True)(ramp)[0, 0, 0].item(), 5) for _ in range(30)}
    assert flips == {-1.0, round(224 / 127.5 - 1, 5)}  # both orientations occur, nothing else


def test_biggan_transform_crops_the_short_edge_square():
    img = Image.new("RGB", (30, 10), (0, 0, 255))
    img.paste(solid((0, 255, 0), 10), (10, 0))
    centre = BigGANTransform(5)(img)
    assert centre.shape == (3, 5, 5) and colour_of(centre) == [0, 255, 0]
    crops = {tuple(colour_of(BigGANTransform(10, augment=True)(img))) for _ in range(40)}
    assert len(crops) > 1  # the random short-edge crop moves


def test_class_folder_labels_follow_sorted_class_names(tmp_path):
    for class_name, colour in (("zebra", (0, 0, 255)), ("cat", (255, 0, 0)), ("dog", (0, 255, 0))):
        for i in range(2):
            save(solid(colour, 12, 10), tmp_path / class_name / "sub" / f"{i}.jpg", "JPEG")
    data = ClassFolderDataset(str(tmp_path), BigGANTransform(8))
    assert data.class_names == ["cat", "dog", "zebra"] and data.num_classes == 3
    labels = [int(data[i]["label"]) for i in range(len(data))]
    assert labels == [0, 0, 1, 1, 2, 2]
    assert np.allclose(colour_of(data[2]["real_img"]), [0, 255, 0], atol=3)


# ----------------------------------------------------------------------------------------- NVlabs


def _nvlabs_images():
    return {f"00000/img{i:08d}.png": noise_image(i, 8, 8) for i in range(4)}


def test_nvlabs_zip_with_dataset_json_labels(tmp_path):
    images = _nvlabs_images()
    labels = {name: label for name, label in zip(reversed(list(images)), [3, 0, 2, 1])}
    path = write_nvlabs_zip(tmp_path / "ds.zip", images, labels)
    assert detect_format(str(path)) == "nvlabs"
    data = NVLabsDataset(str(path), StyleGAN2Transform(8, hflip=False), use_labels=True, verify="headers")
    assert data.num_classes == 4
    for index, name in enumerate(sorted(images)):
        item = data[index]
        assert int(item["label"]) == labels[name]
        assert torch.equal(item["real_img"], as_tensor(images[name]))


def test_nvlabs_folder_and_conditional_datamodule(tmp_path):
    images = _nvlabs_images()
    for name, img in images.items():
        save(img, tmp_path / "ds" / name, "PNG")
    import json

    (tmp_path / "ds" / "dataset.json").write_text(
        json.dumps({"labels": [[n, i % 2] for i, n in enumerate(images)]})
    )
    dm = ConditionalDataModule(str(tmp_path / "ds"), resolution=8, batch_size=2, val_size=2)
    dm.setup("fit")
    assert dm.num_classes == 2
    batch = next(iter(dm.train_dataloader()))
    assert batch["real_img"].shape == (2, 3, 8, 8) and batch["label"].dtype == torch.long
    val = [b["label"].tolist() for b in dm.val_dataloader()]
    assert val == [b["label"].tolist() for b in dm.val_dataloader()]  # fixed subset


# ------------------------------------------------------------------------------------------- LMDB


def test_rosinality_lmdb_reads_the_requested_size(tmp_path):
    colours = [(250, 10, 10), (10, 250, 10), (10, 10, 250)]
    path = write_rosinality_lmdb(tmp_path / "ffhq", [solid(c, 32) for c in colours], sizes=(8, 16))
    assert detect_format(str(path)) == "rosinality_lmdb"
    data = RosinalityLMDBDataset(str(path), 16, StyleGAN2Transform(16, hflip=False))
    assert len(data) == 3
    for index, colour in enumerate(colours):
        img = data[index]["real_img"]
        assert img.shape == (3, 16, 16)
        assert np.allclose(colour_of(img), colour, atol=4)  # JPEG quality 100 on a flat colour
    assert data.image_size(0) == (16, 16)
    assert RosinalityLMDBDataset(str(path), 8, StyleGAN2Transform(8)).image_size(2) == (8, 8)


def test_lsun_lmdb_counts_entries_and_decodes_jpeg_and_webp(tmp_path):
    entries = {
        b"0a5e": encode(solid((200, 30, 30), 20, 12), "JPEG"),
        b"01ff": encode(solid((30, 200, 30), 16, 12), "WEBP"),
        b"ffee": encode(solid((30, 30, 200), 12, 18), "JPEG"),
    }
    path = write_lsun_lmdb(tmp_path / "church_outdoor_train_lmdb", entries)
    assert detect_format(str(path)) == "lsun_lmdb"
    data = LSUNLMDBDataset(str(path), StyleGAN2Transform(8, hflip=False), verify="full")
    assert len(data) == 3
    got = [colour_of(data[i]["real_img"]) for i in range(3)]
    expected = [(30, 200, 30), (200, 30, 30), (30, 30, 200)]  # LMDB key order: 01ff, 0a5e, ffee
    assert all(np.allclose(g, e, atol=6) for g, e in zip(got, expected))
    assert not any(p.name.startswith("_cache") for p in path.iterdir())  # nothing written beside data


@pytest.mark.parametrize("layout", ["lmdb", "zip", "hdf5"])
def test_lazy_handles_work_in_a_worker_process(tmp_path, layout):
    """LMDB environments, zip archives and HDF5 files are reopened in the forked worker."""
    images = [solid((i * 40, 0, 0), 8) for i in range(4)]
    if layout == "lmdb":
        path = write_rosinality_lmdb(tmp_path / "db", images, sizes=(8,))
    elif layout == "zip":
        path = write_nvlabs_zip(tmp_path / "ds.zip", {f"{i}.png": img for i, img in enumerate(images)}, None)
    else:
        chw = np.stack([np.asarray(img).transpose(2, 0, 1) for img in images])
        path = write_biggan_hdf5(tmp_path / "ds.hdf5", chw, np.zeros(4, np.int64))
    dm = UnconditionalDataModule(
        str(path), resolution=8, batch_size=2, num_workers=1, val_size=2, hflip=False
    )
    dm.setup("fit")
    dm.train_set[0]  # open the handle in the parent first, as num_workers=0 evaluation would
    loader = dm.train_dataloader()
    assert loader.persistent_workers and loader.drop_last and loader.num_workers == 1
    reds = sorted(
        int(v) for batch in loader for v in ((batch["real_img"][:, 0].mean((1, 2)) + 1) * 127.5).round()
    )
    assert np.allclose(reds, [0, 40, 80, 120], atol=3)


# ------------------------------------------------------------------------------------------- HDF5


def test_biggan_hdf5_values_labels_and_datamodule(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (6, 3, 8, 8), dtype=np.uint8)
    labels = np.array([5, 1, 0, 3, 1, 2])
    path = write_biggan_hdf5(tmp_path / "ILSVRC8.hdf5", imgs, labels)
    data = BigGANHDF5Dataset(str(path), resolution=8)
    assert data.num_classes == 6 and len(data) == 6
    for index in range(6):
        item = data[index]
        assert torch.equal(item["real_img"], torch.from_numpy(imgs[index]).float() / 127.5 - 1)
        assert int(item["label"]) == labels[index]
    dm = ConditionalDataModule(str(path), resolution=8, batch_size=3, val_size=4, num_classes=10)
    dm.setup("fit")
    assert dm.num_classes == 10 and len(dm.val_set) == 4
    assert next(iter(dm.train_dataloader()))["label"].shape == (3,)


# --------------------------------------------------------------------------------------- pix2pix


def _write_pairs(folder, count, size=16):
    """A = noise in [64, 192] (no clipping when bicubic overshoots), B = 255 - A (so b = -a)."""
    for i in range(count):
        a = noise_image(i, size, size, 64, 192)
        b = Image.fromarray(255 - np.asarray(a))
        save(side_by_side(a, b), folder / f"{i}.jpg" if False else folder / f"{i}.png", "PNG")


def test_aligned_pairs_get_the_same_random_crop_and_flip(tmp_path):
    _write_pairs(tmp_path / "train", 2)
    data = AlignedDataset(str(tmp_path), Pix2PixTransform(load_size=22, crop_size=16), "train")
    outputs = []
    for seed in range(6):
        torch.manual_seed(seed)
        item = data[0]
        assert item["input_img"].shape == item["real_img"].shape == (3, 16, 16)
        assert (item["real_img"] + item["input_img"]).abs().max() <= 2.5 / 127.5  # same crop and flip
        outputs.append(item["input_img"])
    assert any(not torch.equal(outputs[0], o) for o in outputs[1:])  # the crop really is random

    torch.manual_seed(0)
    forward = data[1]
    torch.manual_seed(0)
    backward = AlignedDataset(str(tmp_path), Pix2PixTransform(22, 16), "train", direction="BtoA")[1]
    assert torch.equal(forward["input_img"], backward["real_img"])
    assert torch.equal(forward["real_img"], backward["input_img"])


def test_aligned_halves_without_augmentation_are_exact(tmp_path):
    a, b = noise_image(7, 8, 8), noise_image(8, 8, 8)
    save(side_by_side(a, b), tmp_path / "val" / "0.png", "PNG")
    item = AlignedDataset(str(tmp_path), Pix2PixTransform(8, 8, flip=False), "val")[0]
    assert torch.equal(item["input_img"], as_tensor(a)) and torch.equal(item["real_img"], as_tensor(b))


def test_paired_datamodule_splits_and_eval_without_augmentation(tmp_path):
    _write_pairs(tmp_path / "train", 4)
    _write_pairs(tmp_path / "val", 3)
    dm = PairedDataModule(str(tmp_path), resolution=16, batch_size=2, val_size=2)
    assert dm.load_size == 18  # 286/256 of the crop size
    dm.setup("fit")
    assert (
        len(dm.train_set) == 4 and len(dm.val_set) == 2 and len(dm.test_set) == 3
    )  # test falls back to val/
    first = [b["input_img"] for b in dm.val_dataloader()]
    assert all(torch.equal(x, y) for x, y in zip(first, [b["input_img"] for b in dm.val_dataloader()]))
    assert next(iter(dm.train_dataloader()))["real_img"].shape == (2, 3, 16, 16)


# -------------------------------------------------------------------------------------- CycleGAN


def _write_domains(root, phase, count_a, count_b):
    for i in range(count_a):
        save(solid((10 + 60 * i, 0, 0), 10), root / f"{phase}A" / f"{i}.png", "PNG")
    for i in range(count_b):
        save(solid((0, 10 + 60 * i, 0), 10), root / f"{phase}B" / f"{i}.jpg", "JPEG")


def test_unaligned_length_serial_and_random_b(tmp_path):
    _write_domains(tmp_path, "train", 3, 2)
    serial = UnalignedDataset(str(tmp_path), Pix2PixTransform(10, 8, flip=False), "train", serial_b=True)
    assert len(serial) == 3
    a_reds = [colour_of(serial[i]["input_img"])[0] for i in range(3)]
    b_greens = [colour_of(serial[i]["real_img"])[1] for i in range(3)]
    assert a_reds == [10, 70, 130]
    assert np.allclose(b_greens, [10, 70, 10], atol=3)  # B index = i % |B|
    randomised = serial.with_transform(serial.transform, serial_b=False)
    torch.manual_seed(0)
    drawn = {round(colour_of(randomised[0]["real_img"])[1] / 60) for _ in range(20)}
    assert drawn == {0, 1}  # random B, independent of the A index


def test_unpaired_datamodule_uses_test_split_for_evaluation(tmp_path):
    _write_domains(tmp_path, "train", 4, 3)
    _write_domains(tmp_path, "test", 2, 2)
    dm = UnpairedDataModule(str(tmp_path), resolution=8, batch_size=2, val_size=1, pin_memory=False)
    dm.setup("fit")
    assert len(dm.train_set) == 4 and len(dm.val_set) == 1 and len(dm.test_set) == 2
    batch = next(iter(dm.test_dataloader()))
    assert set(batch) == {"input_img", "real_img"} and batch["input_img"].shape == (2, 3, 8, 8)
    assert not dm.test_dataloader().pin_memory
