"""The image tasks read the published file formats from the config's data folder: CIFAR-10's binary
version and downsampled ImageNet's npz files, written here in exactly those formats (a few records
each), trained on once, and named in the error when they are missing."""

from __future__ import annotations

import numpy as np
import pytest

import tasks
from evosearch import reference
from tasks import images
from tasks.vit import PatchTransformer


def write_cifar(folder, records=30, seed=0):
    """CIFAR-10 binary files: ``records`` 3,073-byte records per file, label byte first."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name in images.CIFAR_TRAIN + (images.CIFAR_TEST,):
        labels = rng.integers(0, 10, records, dtype=np.uint8)
        # class-dependent brightness, so that a model can learn something
        pixels = (rng.integers(0, 128, (records, 3072)) + labels[:, None] * 12).astype(np.uint8)
        np.concatenate([labels[:, None], pixels], axis=1).tofile(folder / name)


def write_imagenet64(folder, records=40, seed=0):
    """ImageNet 64x64 npz files: ``data`` N x 12,288 uint8, ``labels`` 1-based, ``mean`` in train."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for name in images.IMAGENET_TRAIN + (images.IMAGENET_VAL,):
        labels = rng.integers(1, 13, records)            # classes 1..12: some outside a 10-class subset
        data = (rng.integers(0, 128, (records, 12288)) + labels[:, None] * 10).astype(np.uint8)
        arrays = dict(data=data, labels=labels)
        if name != images.IMAGENET_VAL:
            arrays["mean"] = data.mean(0)
        np.savez(folder / name, **arrays)


def test_cifar_binary_records_read_as_published(tmp_path):
    write_cifar(tmp_path / images.CIFAR_FOLDER, records=3)
    raw = np.fromfile(tmp_path / images.CIFAR_FOLDER / "data_batch_1.bin", dtype=np.uint8).reshape(3, 3073)
    x, y = images.read_cifar([tmp_path / images.CIFAR_FOLDER / "data_batch_1.bin"])
    assert x.shape == (3, 3072) and list(y) == list(raw[:, 0])
    # channel-major: the first 1,024 bytes after the label are the red plane, row by row
    assert (x[1, :1024] == raw[1, 1:1025]).all()
    x5, _ = images.read_cifar([tmp_path / images.CIFAR_FOLDER / n for n in images.CIFAR_TRAIN], limit=7)
    assert len(x5) == 7


def test_imagenet64_reader_keeps_the_class_subset_and_count(tmp_path):
    write_imagenet64(tmp_path, records=40)
    paths = [tmp_path / n for n in images.IMAGENET_TRAIN]
    x, y = images.read_imagenet64(paths, classes=3)
    labels = np.concatenate([np.load(p)["labels"] for p in paths])
    assert len(y) == int((labels <= 3).sum()) and set(y) <= {0, 1, 2}      # 1-based in the files
    x, y = images.read_imagenet64(paths, classes=10, limit=25)
    assert x.shape == (25, 12288) and x.dtype == np.uint8


@pytest.mark.parametrize("name, writer", [("cifar10_vit", write_cifar), ("imagenet64_vit", write_imagenet64)])
def test_trains_on_files_in_the_published_format(tmp_path, monkeypatch, name, writer):
    monkeypatch.setenv("EVOSEARCH_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "data" / (images.CIFAR_FOLDER if name == "cifar10_vit" else images.IMAGENET_FOLDER)
    writer(folder)
    task = tasks.get(name, data_dir=tmp_path / "data")
    r = task.evaluate(reference.load("adamw"), seed=0)
    assert r.failure is None and np.isfinite(r.fitness)
    assert 0 <= r.metrics["val_accuracy"] <= 1 and r.metrics["steps"] == task.steps
    # the same files found by their own folder are the same data; other files another baseline
    assert tasks.get(name, data_dir=folder).key() == task.key()
    writer(tmp_path / "other", records=12)
    assert tasks.get(name, data_dir=tmp_path / "other").key() != task.key()


@pytest.mark.parametrize("name, expected", [("cifar10_vit", "data_batch_1.bin"),
                                            ("imagenet64_vit", "train_data_batch_10.npz")])
def test_missing_files_name_the_folder_and_the_files(tmp_path, monkeypatch, name, expected):
    monkeypatch.delenv("EVOSEARCH_DATA", raising=False)
    with pytest.raises(images.DataMissing, match="no data folder given.*data_dir"):
        _ = tasks.get(name).data
    with pytest.raises(FileNotFoundError) as exc:
        _ = tasks.get(name, data_dir=tmp_path).data
    assert str(tmp_path) in str(exc.value) and expected in str(exc.value)


def test_one_missing_file_is_named(tmp_path):
    write_cifar(tmp_path / images.CIFAR_FOLDER, records=2)
    (tmp_path / images.CIFAR_FOLDER / "test_batch.bin").unlink()
    with pytest.raises(images.DataMissing, match=r"missing in \S*cifar-10-batches-bin: test_batch\.bin\. "):
        tasks.get("cifar10_vit", data_dir=tmp_path).key()


def test_pickled_or_malformed_files_are_refused(tmp_path):
    write_imagenet64(tmp_path, records=2)
    np.savez(tmp_path / "val_data.npz", data=np.array([{"x": 1}], dtype=object), labels=np.array([1]))
    with pytest.raises(images.DataFormatError, match="val_data.npz"):
        images.read_imagenet64([tmp_path / "val_data.npz"], classes=10)
    (tmp_path / "bad.bin").write_bytes(b"\0" * 100)
    with pytest.raises(images.DataFormatError, match="bad.bin"):
        images.read_cifar([tmp_path / "bad.bin"])


def test_the_data_folder_leaves_other_tasks_alone(tmp_path):
    assert tasks.get("digits_vit", data_dir=tmp_path).key() == tasks.get("digits_vit").key()


def test_patch_transformer_takes_rgb_images_flat_or_shaped():
    import torch
    model = PatchTransformer(8, 16, 1, 2, classes=5, image=32, channels=3)
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(model(x), model(x.reshape(2, -1))) and model(x).shape == (2, 5)


def test_config_data_dir_is_relative_to_the_config_and_reaches_the_tasks(tmp_path):
    from evosearch.search.config import load_config
    from evosearch.search.suite import SuiteEvaluator
    write_cifar(tmp_path / "data" / images.CIFAR_FOLDER, records=4)
    (tmp_path / "exp").mkdir()
    config = tmp_path / "exp" / "c.toml"
    config.write_text('[tasks]\nnames = ["cifar10_vit"]\ndata_dir = "../data"\n[executor]\nin_process = true\n')
    cfg = load_config(config)
    assert cfg.data_dir == str(tmp_path / "data") and cfg.suite().data_dir == cfg.data_dir
    task = SuiteEvaluator(cfg.suite()).tasks["cifar10_vit"]     # loads the data, as a worker does
    assert task.data_dir == tmp_path / "data" and len(task.data[0]) == 4 * 5
