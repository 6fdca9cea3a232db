"""Bad input: each case fails at setup with one DatasetError line that names the culprit."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from data_files import (
    encode,
    noise_image,
    save,
    solid,
    write_biggan_hdf5,
    write_lsun_lmdb,
    write_nvlabs_zip,
    write_rosinality_lmdb,
)

from lightning_gancomp.data import (
    ConditionalDataModule,
    DatasetError,
    ImageFolderDataset,
    NVLabsDataset,
    PairedDataModule,
    StyleGAN2Transform,
    UnconditionalDataModule,
    UnpairedDataModule,
)


def setup_error(dm) -> str:
    with pytest.raises(DatasetError) as info:
        dm.setup("fit")
    return one_line(info.value)


def one_line(err: Exception) -> str:
    message = str(err)
    assert "\n" not in message and message
    return message


def test_dataset_error_is_a_value_error():
    assert issubclass(DatasetError, ValueError)


@pytest.mark.parametrize(
    "cls", [UnconditionalDataModule, ConditionalDataModule, PairedDataModule, UnpairedDataModule]
)
def test_missing_path_is_named(tmp_path, cls):
    missing = str(tmp_path / "nowhere")
    dm = cls(missing, resolution=8, batch_size=1)  # constructing does no I/O
    assert setup_error(dm) == f"dataset path does not exist: {missing}"


def test_empty_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "readme.txt").write_text("x")
    message = setup_error(UnconditionalDataModule(str(tmp_path), resolution=8, batch_size=1))
    assert message.startswith("no images (") and message.endswith(f"found in folder: {tmp_path}")


def test_non_image_file_named_at_setup(tmp_path):
    save(noise_image(0, 8, 8), tmp_path / "a.png", "PNG")
    (tmp_path / "b.png").write_bytes(b"definitely not a png")
    dm = UnconditionalDataModule(str(tmp_path), resolution=8, batch_size=1, verify="headers")
    assert re.fullmatch(rf"cannot read image {re.escape(str(tmp_path / 'b.png'))}: .+", setup_error(dm))
    # the first image is always decoded at setup
    (tmp_path / "a.png").write_bytes(b"garbage")
    dm = UnconditionalDataModule(str(tmp_path), resolution=8, batch_size=1)
    assert setup_error(dm).startswith(f"cannot decode image {tmp_path / 'a.png'}: ")


def test_truncated_jpeg_is_named_when_decoded(tmp_path):
    save(noise_image(0, 16, 16), tmp_path / "0.jpg", "JPEG")
    whole = encode(noise_image(1, 64, 64), "JPEG")
    (tmp_path / "1.jpg").write_bytes(whole[: len(whole) // 2])  # header intact, pixels cut off
    data = ImageFolderDataset(str(tmp_path), StyleGAN2Transform(8), verify="headers")  # headers look fine
    with pytest.raises(DatasetError) as info:
        data[1]
    assert one_line(info.value).startswith(f"cannot decode image {tmp_path / '1.jpg'}: ")
    dm = UnconditionalDataModule(str(tmp_path), resolution=8, batch_size=1, verify="full")
    assert setup_error(dm).startswith(f"cannot decode image {tmp_path / '1.jpg'}: ")


def test_mixed_sizes_where_fixed_size_is_required(tmp_path):
    images = {"00000/a.png": solid((1, 2, 3), 8), "00000/b.png": solid((1, 2, 3), 16)}
    path = write_nvlabs_zip(tmp_path / "ds.zip", images, labels=None)
    message = setup_error(UnconditionalDataModule(str(path), resolution=8, batch_size=1))
    assert message == (
        f"images of mixed sizes where a fixed size is required: {path}:00000/a.png is 8x8 "
        f"but {path}:00000/b.png is 16x16"
    )
    # a plain folder resizes every image, so mixed sizes are fine there
    for name, img in images.items():
        save(img, tmp_path / "folder" / name, "PNG")
    dm = UnconditionalDataModule(str(tmp_path / "folder"), resolution=8, batch_size=1)
    dm.setup("fit")
    assert dm.train_set[1]["real_img"].shape == (3, 8, 8)


def test_biggan_hdf5_size_mismatch_and_missing_dataset(tmp_path):
    path = write_biggan_hdf5(tmp_path / "I8.hdf5", np.zeros((2, 3, 8, 8), np.uint8), np.array([0, 1]))
    message = setup_error(ConditionalDataModule(str(path), resolution=16, batch_size=1))
    assert message == f"HDF5 {path}: images are 8x8 but resolution=16 is required"
    import h5py

    with h5py.File(tmp_path / "nolabels.h5", "w") as handle:
        handle.create_dataset("imgs", data=np.zeros((2, 3, 8, 8), np.uint8))
    message = setup_error(ConditionalDataModule(str(tmp_path / "nolabels.h5"), resolution=8, batch_size=1))
    assert message == f"HDF5 {tmp_path / 'nolabels.h5'} has no dataset 'labels' (BigGAN layout: imgs, labels)"


def test_rosinality_lmdb_without_length(tmp_path):
    path = write_rosinality_lmdb(tmp_path / "db", [solid((9, 9, 9), 8)], sizes=(8,), length=False)
    message = setup_error(UnconditionalDataModule(str(path), resolution=8, batch_size=1))  # auto-detected
    assert message.startswith(
        f"LMDB {path} has no 'length' key, so it is not a rosinality prepare_data.py dataset"
    )
    lsun = write_lsun_lmdb(tmp_path / "lsun", {b"abc": encode(solid((1, 1, 1), 8), "JPEG")})
    dm = UnconditionalDataModule(str(lsun), resolution=8, batch_size=1, format="rosinality_lmdb")
    assert "has no 'length' key" in setup_error(dm)


def test_rosinality_lmdb_without_the_resolution(tmp_path):
    path = write_rosinality_lmdb(tmp_path / "db", [solid((9, 9, 9), 32)], sizes=(8, 16))
    message = setup_error(UnconditionalDataModule(str(path), resolution=32, batch_size=1))
    assert message == f"LMDB {path} has no images at resolution 32 (sizes present: 8, 16)"


def test_unknown_format_and_undetectable_file(tmp_path):
    with pytest.raises(DatasetError) as info:
        UnconditionalDataModule(str(tmp_path), format="tfrecord")
    assert one_line(info.value).startswith(
        "unknown dataset format 'tfrecord'; expected one of image_folder, "
    )
    with pytest.raises(DatasetError) as info:
        ConditionalDataModule(str(tmp_path), format="lsun_lmdb")  # has no labels
    assert (
        one_line(info.value)
        == "unknown dataset format 'lsun_lmdb'; expected one of class_folder, nvlabs, biggan_hdf5"
    )
    odd = tmp_path / "data.tfrecord"
    odd.write_bytes(b"x")
    assert setup_error(UnconditionalDataModule(str(odd), batch_size=1)).startswith(
        f"cannot tell the dataset format of file {odd}: "
    )


def test_fewer_items_than_one_batch(tmp_path):
    save(solid((1, 2, 3), 8), tmp_path / "a.png", "PNG")
    message = setup_error(UnconditionalDataModule(str(tmp_path), resolution=8, batch_size=4))
    assert message.startswith(f"dataset {tmp_path} has 1 training items, fewer than batch_size=4")


def test_nvlabs_label_problems(tmp_path):
    images = {"a.png": solid((1, 2, 3), 8), "b.png": solid((1, 2, 3), 8)}
    no_json = write_nvlabs_zip(tmp_path / "nojson.zip", images, labels=None)
    with pytest.raises(DatasetError) as info:
        NVLabsDataset(str(no_json), StyleGAN2Transform(8), use_labels=True)
    assert one_line(info.value) == f"labels requested but {no_json}/dataset.json does not exist"
    partial = write_nvlabs_zip(tmp_path / "partial.zip", images, labels={"a.png": 1})
    assert setup_error(ConditionalDataModule(str(partial), resolution=8, batch_size=1)) == (
        f"{partial}/dataset.json has no label for image b.png"
    )
    floats = write_nvlabs_zip(tmp_path / "floats.zip", images, labels={"a.png": 1, "b.png": 0.5})
    assert "label of b.png is 0.5, expected a class index" in setup_error(
        ConditionalDataModule(str(floats), resolution=8, batch_size=1)
    )
    bad_json = tmp_path / "folder"
    save(images["a.png"], bad_json / "a.png", "PNG")
    (bad_json / "dataset.json").write_text(json.dumps({"labels": None}))
    assert setup_error(ConditionalDataModule(str(bad_json), resolution=8, batch_size=1)).startswith(
        f'{bad_json}/dataset.json has no "labels"'
    )


def test_more_labels_than_num_classes(tmp_path):
    path = write_biggan_hdf5(tmp_path / "I8.hdf5", np.zeros((3, 3, 8, 8), np.uint8), np.array([0, 4, 1]))
    message = setup_error(ConditionalDataModule(str(path), resolution=8, batch_size=1, num_classes=3))
    assert message == f"dataset {path} has labels up to 4 but num_classes=3"


def test_image_to_image_layout_problems(tmp_path):
    (tmp_path / "train").mkdir()
    assert setup_error(PairedDataModule(str(tmp_path), resolution=8)) == (
        f"no images found in pix2pix 'train' folder: {tmp_path / 'train'}"
    )
    save(solid((1, 1, 1), 8), tmp_path / "trainA" / "0.png", "PNG")
    assert setup_error(UnpairedDataModule(str(tmp_path), resolution=8)) == (
        f"CycleGAN domain B folder does not exist: {tmp_path / 'trainB'}"
    )
    with pytest.raises(DatasetError) as info:
        PairedDataModule(str(tmp_path), direction="AtoC")
    assert one_line(info.value) == "unknown direction 'AtoC'; expected 'AtoB' or 'BtoA'"
    with pytest.raises(DatasetError) as info:
        PairedDataModule(str(tmp_path), resolution=256, load_size=128)
    assert one_line(info.value) == "load_size=128 is smaller than crop_size=256"
