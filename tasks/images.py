"""Image classification on data read from disk, the paper's proxy family: a small vision transformer
(``vit.py``) on CIFAR-10 and on downsampled ImageNet at 64x64 (Chrabaszcz, Loshchilov and Hutter
2017, "A Downsampled Variant of ImageNet as an Alternative to the CIFAR datasets").

The files are the published ones, read with numpy alone: never downloaded, never unpickled.

- CIFAR-10, binary version (``cifar-10-binary.tar.gz``): ``data_batch_1.bin`` ... ``data_batch_5.bin``
  and ``test_batch.bin``, each a run of 3,073-byte records (10,000 per file): one label byte (0-9),
  then 32x32 red, green and blue planes, row-major.
- ImageNet 64x64, npz version (image-net.org's "Imagenet64x64" download): ``train_data_batch_1.npz``
  ... ``train_data_batch_10.npz`` and ``val_data.npz``, each with ``data`` (N x 12,288 uint8: the
  64x64 red, green and blue planes, row-major) and ``labels`` (1 to 1,000); the train batches also
  hold ``mean``, unused here. Loaded with ``allow_pickle=False``.

The folder comes from the config (``[tasks] data_dir``) or ``$EVOSEARCH_DATA``; a task looks in its
standard subfolder there (``cifar-10-batches-bin``, ``imagenet64``), then in the folder itself. Images
stay uint8 in memory (a 100-class ImageNet subset is 1.6 GB) and become floats a batch at a time, on
the task's device (``[executor] device``: ``tasks.devices``).
"""

from __future__ import annotations

import abc
from pathlib import Path

import numpy as np
import torch

from . import register
from .base import Task
from .training import Minibatches
from .vit import PatchTransformer

CIFAR_FOLDER = "cifar-10-batches-bin"
CIFAR_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR_TEST = "test_batch.bin"
CIFAR_RECORD = 1 + 3 * 32 * 32

IMAGENET_FOLDER = "imagenet64"
IMAGENET_TRAIN = tuple(f"train_data_batch_{i}.npz" for i in range(1, 11))
IMAGENET_VAL = "val_data.npz"
IMAGENET_PIXELS = 3 * 64 * 64

EVAL_CHUNK = 500   # validation images per forward pass: bounded memory whatever the validation set


class DataMissing(FileNotFoundError):
    """A task's data files are not where the config says; the message names the folder and the files."""


class DataFormatError(ValueError):
    """A data file that is not in the published format; the message names the file."""


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to floats in [-1, 1]."""
    return x.float() / 127.5 - 1.0


def find_files(task: str, data_dir: Path | None, folder: str, names: tuple[str, ...], what: str) -> list[Path]:
    """The paths of ``names`` in ``data_dir/folder`` or ``data_dir``; DataMissing naming the folder,
    the files expected and the ones missing."""
    expected = f"{what}: {', '.join(names)}"
    if data_dir is None:
        raise DataMissing(f"{task}: no data folder given; set [tasks] data_dir in the config (or $EVOSEARCH_DATA) "
                          f"to a folder holding {folder}/ with the {expected}")
    places = [data_dir / folder, data_dir]
    for place in places:
        if all((place / n).is_file() for n in names):
            return [place / n for n in names]
    best = max(places, key=lambda p: sum((p / n).is_file() for n in names))
    missing = [n for n in names if not (best / n).is_file()]
    raise DataMissing(f"{task}: data files missing in {data_dir} (looked in {places[0]} and {places[1]}); expected the "
                      f"{expected}; missing in {best}: {', '.join(missing)}. Nothing is downloaded: fetch them "
                      f"and set [tasks] data_dir (or $EVOSEARCH_DATA)")


def read_cifar(paths: list[Path], limit: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images (N x 3,072 uint8, channel-major) and labels (0-9) from CIFAR-10 binary files, in file
    order, at most ``limit`` (0: all)."""
    xs, ys, total = [], [], 0
    for path in paths:
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size == 0 or raw.size % CIFAR_RECORD:
            raise DataFormatError(f"{path}: {raw.size} bytes, not a whole number of CIFAR-10 binary records "
                                  f"({CIFAR_RECORD} bytes each: a label byte and 3,072 pixels)")
        records = raw.reshape(-1, CIFAR_RECORD)
        if records[:, 0].max() > 9:
            raise DataFormatError(f"{path}: a label byte above 9; not the CIFAR-10 binary version")
        xs.append(records[:, 1:])
        ys.append(records[:, 0].astype(np.int64))
        total += len(records)
        if limit and total >= limit:
            break
    return _cut(np.concatenate(xs), np.concatenate(ys), limit)


def read_imagenet64(paths: list[Path], classes: int, limit: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images (N x 12,288 uint8, channel-major) and labels (0-based) of the first ``classes`` classes
    from downsampled-ImageNet npz files, in file order, at most ``limit`` (0: all)."""
    xs, ys, total = [], [], 0
    for path in paths:
        try:
            with np.load(path, allow_pickle=False) as npz:
                labels, data = np.asarray(npz["labels"]), npz["data"]
        except KeyError as exc:
            raise DataFormatError(f"{path}: no {exc} array; the ImageNet 64x64 npz files hold 'data' and "
                                  f"'labels'") from None
        except ValueError as exc:          # an object array (it would need unpickling) or not an npz file
            raise DataFormatError(f"{path}: not an ImageNet 64x64 npz file readable without pickle ({exc})") from None
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != IMAGENET_PIXELS \
                or labels.shape != (len(data),) or labels.dtype.kind not in "iu":
            raise DataFormatError(f"{path}: expected 'data' N x {IMAGENET_PIXELS} uint8 and N integer 'labels', "
                                  f"found {data.dtype} {data.shape} and {labels.dtype} {labels.shape}")
        labels = labels.astype(np.int64) - 1       # the files number the classes from 1
        if len(labels) and (labels.min() < 0 or labels.max() > 999):
            raise DataFormatError(f"{path}: labels outside 1..1000")
        keep = labels < classes
        xs.append(data[keep])
        ys.append(labels[keep])
        total += int(keep.sum())
        if limit and total >= limit:
            break
    return _cut(np.concatenate(xs), np.concatenate(ys), limit)


def _cut(x: np.ndarray, y: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray]:
    return (x[:limit], y[:limit]) if limit else (x, y)


class ImageBatches(Minibatches):
    """``Minibatches`` over the uint8 images, each batch turned to floats on the task's device."""

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = super().next()
        return to_float(x), y


class ImageTask(Task):
    """A vision transformer on images read from disk. Settings: ``patch``, ``width``, ``layers``,
    ``heads`` (the model), ``train_images`` and ``val_images`` (how many to use, 0: all)."""

    reads_files = True
    image: int = 32
    folder: str = ""
    what: str = ""       # the files' name in messages

    @abc.abstractmethod
    def files(self) -> tuple[list[Path], list[Path]]:
        """The training and validation files; DataMissing naming the folder and files when absent."""

    @abc.abstractmethod
    def read(self, train: list[Path], val: list[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The uint8 images and labels, training then validation."""

    def classes(self) -> int:
        return 10

    def data_identity(self):
        # the folder and each file's name and size (cheap on multi-gigabyte files; a changed file
        # of the same size keeps the baseline: give changed data another folder)
        train, val = self.files()
        return [str(train[0].parent.resolve())] + [[p.name, p.stat().st_size] for p in train + val]

    def make_data(self):
        x_train, y_train, x_val, y_val = self.read(*self.files())
        if len(x_train) == 0 or len(x_val) == 0:
            raise DataFormatError(f"{self.name}: no images of the chosen classes in {self.files()[0][0].parent}")
        return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in (x_train, y_train, x_val, y_val))

    def make_model(self):
        cfg = self.config
        return PatchTransformer(cfg["patch"], cfg["width"], cfg["layers"], cfg["heads"], self.classes(),
                                image=self.image, channels=3)

    def sampler(self, seed: int) -> ImageBatches:
        return ImageBatches(self, seed)

    def metrics(self, model, x, y) -> dict:
        """Validation loss and accuracy, ``EVAL_CHUNK`` images at a time."""
        loss, correct = 0.0, 0
        for i in range(0, len(x), EVAL_CHUNK):
            out = model(to_float(x[i:i + EVAL_CHUNK]))
            loss += float(torch.nn.functional.cross_entropy(out, y[i:i + EVAL_CHUNK], reduction="sum"))
            correct += int((out.argmax(-1) == y[i:i + EVAL_CHUNK]).sum())
        return {"val_loss": loss / len(x), "val_accuracy": correct / len(x)}


@register
class Cifar10ViT(ImageTask):
    """The ``cifar10_vit`` task."""
    name = "cifar10_vit"
    description = "a small vision transformer on CIFAR-10 (binary version, from [tasks] data_dir)"
    image, folder, what = 32, CIFAR_FOLDER, "CIFAR-10 binary version files"
    sizes = {"proxy": dict(steps=100, batch_size=64, patch=8, width=32, layers=1, heads=2,
                           train_images=5000, val_images=1000),
             "large": dict(steps=5000, batch_size=128, patch=4, width=192, layers=6, heads=3,
                           train_images=0, val_images=0, time_limit=3600)}

    def files(self):
        paths = find_files(self.name, self.data_dir, self.folder, CIFAR_TRAIN + (CIFAR_TEST,), self.what)
        return paths[:-1], paths[-1:]

    def read(self, train, val):
        cfg = self.config
        return (*read_cifar(train, cfg["train_images"]), *read_cifar(val, cfg["val_images"]))


@register
class ImageNet64ViT(ImageTask):
    """The ``imagenet64_vit`` task: the paper's proxy (its "paper" size; see experiments/lion_paper.toml)."""
    name = "imagenet64_vit"
    description = "a small vision transformer on a class subset of ImageNet 64x64 (npz files, from [tasks] data_dir)"
    image, folder, what = 64, IMAGENET_FOLDER, "ImageNet 64x64 npz files"
    # "paper": the paper's proxy as far as it is stated (a small ViT on an ImageNet subset at 64x64,
    # batch 64, thousands of steps); the class count, model shape and step count are guesses,
    # experiments/lion_paper.toml says which. "large": the funnel's meta-validation, a wider and
    # deeper model trained twice as long.
    sizes = {"proxy": dict(steps=100, batch_size=64, patch=16, width=32, layers=1, heads=2, classes=10,
                           train_images=5000, val_images=500),
             "paper": dict(steps=8000, batch_size=64, patch=8, width=192, layers=6, heads=3, classes=100,
                           train_images=0, val_images=0, time_limit=3600),
             "large": dict(steps=16000, batch_size=128, patch=8, width=384, layers=6, heads=6, classes=100,
                           train_images=0, val_images=0, time_limit=14400)}

    def classes(self) -> int:
        return int(self.config["classes"])

    def files(self):
        paths = find_files(self.name, self.data_dir, self.folder, IMAGENET_TRAIN + (IMAGENET_VAL,), self.what)
        return paths[:-1], paths[-1:]

    def read(self, train, val):
        cfg = self.config
        return (*read_imagenet64(train, self.classes(), cfg["train_images"]),
                *read_imagenet64(val, self.classes(), cfg["val_images"]))
