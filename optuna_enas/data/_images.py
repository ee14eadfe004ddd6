"""Image classification data for the CNN spaces: scikit-learn's digits and CIFAR-10."""

from __future__ import annotations

import io
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch


_logger = logging.getLogger(__name__)

_CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST = "test_batch"
_CIFAR_SIDE = 32
_CIFAR_PIXELS = 3 * _CIFAR_SIDE * _CIFAR_SIDE


@dataclass(frozen=True, eq=False)
class ImageData:
    """Train/valid/test image tensors, already normalized.

    Args:
        train_x: Training images, shape ``(N, C, H, W)``, float32.
        train_y: Training labels, shape ``(N,)``, int64 in ``[0, n_classes)``.
        valid_x: Validation images.
        valid_y: Validation labels.
        test_x: Test images.
        test_y: Test labels.
        n_classes: Number of classes.
        name: A short description of where the data came from.
    """

    train_x: torch.Tensor
    train_y: torch.Tensor
    valid_x: torch.Tensor
    valid_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    n_classes: int
    name: str = "images"

    def __post_init__(self) -> None:
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, int):
            raise ValueError(f"n_classes must be an integer, but got {self.n_classes!r}.")
        if self.n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, but got {self.n_classes}.")
        shape = None
        for split in ("train", "valid", "test"):
            x, y = getattr(self, f"{split}_x"), getattr(self, f"{split}_y")
            if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.dtype != torch.float32:
                raise ValueError(f"{split}_x must be a float32 (N, C, H, W) tensor, got {x!r}.")
            if not isinstance(y, torch.Tensor) or y.dim() != 1 or y.dtype != torch.int64:
                raise ValueError(f"{split}_y must be a 1-D int64 tensor, but got {y!r}.")
            if x.size(0) != y.size(0) or x.size(0) == 0:
                raise ValueError(
                    f"{split}_x and {split}_y must hold the same positive number of examples, "
                    f"but got {x.size(0)} and {y.size(0)}."
                )
            if int(y.min()) < 0 or int(y.max()) >= self.n_classes:
                raise ValueError(f"{split}_y holds labels outside [0, {self.n_classes}).")
            if shape is None:
                shape = tuple(x.shape[1:])
            elif tuple(x.shape[1:]) != shape:
                raise ValueError(
                    f"{split}_x has image shape {tuple(x.shape[1:])}, but train_x has {shape}."
                )

    @property
    def in_channels(self) -> int:
        return int(self.train_x.size(1))

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.train_x.size(2)), int(self.train_x.size(3))

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` of split ``"train"``, ``"valid"`` or ``"test"``."""
        if name not in ("train", "valid", "test"):
            raise ValueError(f"split must be 'train', 'valid' or 'test', but got {name!r}.")
        return getattr(self, f"{name}_x"), getattr(self, f"{name}_y")


def _standardize(train: np.ndarray, *others: np.ndarray) -> tuple[torch.Tensor, ...]:
    # Per-channel statistics of the training split, applied to every split (ENAS
    # src/cifar10/data_utils.py does the same with axis=(0, 1, 2) in NHWC).
    mean = train.mean(axis=(0, 2, 3), keepdims=True)
    std = train.std(axis=(0, 2, 3), keepdims=True)
    std = np.where(std > 0, std, 1.0)
    return tuple(
        torch.from_numpy(np.ascontiguousarray((a - mean) / std, dtype=np.float32))
        for a in (train, *others)
    )


def load_digits_dataset(
    *, seed: int = 0, valid_fraction: float = 0.2, test_fraction: float = 0.2
) -> ImageData:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes; offline).

    Pixels (0..16) are scaled to ``[0, 1]`` and standardized with the training mean and
    standard deviation. The split is a permutation from ``numpy.random.default_rng(seed)``.

    Args:
        seed: Seed of the split.
        valid_fraction: Fraction of the images in the validation split.
        test_fraction: Fraction of the images in the test split.

    Raises:
        ImportError: scikit-learn is not installed (``pip install optuna-enas[images]``).
    """
    for name, value in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise ValueError(f"{name} must be in (0, 1), but got {value!r}.")
    if valid_fraction + test_fraction >= 1:
        raise ValueError(
            "valid_fraction + test_fraction must be below 1, but got "
            f"{valid_fraction} + {test_fraction}."
        )
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:
        raise ImportError(
            "load_digits_dataset needs scikit-learn; install it with "
            "`pip install optuna-enas[images]` (or `pip install scikit-learn`)."
        ) from e
    bunch = load_digits()
    x = np.asarray(bunch.images, dtype=np.float64)[:, None] / 16.0  # (N, 1, 8, 8)
    y = np.asarray(bunch.target, dtype=np.int64)
    n = len(y)
    order = np.random.default_rng(seed).permutation(n)
    n_valid = max(1, int(round(valid_fraction * n)))
    n_test = max(1, int(round(test_fraction * n)))
    test_idx, valid_idx, train_idx = np.split(order, [n_test, n_test + n_valid])
    train_x, valid_x, test_x = _standardize(x[train_idx], x[valid_idx], x[test_idx])
    return ImageData(
        train_x=train_x,
        train_y=torch.from_numpy(y[train_idx]),
        valid_x=valid_x,
        valid_y=torch.from_numpy(y[valid_idx]),
        test_x=test_x,
        test_y=torch.from_numpy(y[test_idx]),
        n_classes=10,
        name=f"digits(seed={seed})",
    )


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles plain containers and NumPy arrays only, so a hostile file cannot run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),  # Protocol-2 pickles written by Python 3 store bytes with it.
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        if module == "numpy.core.multiarray":  # NumPy 2 moved it; avoid the deprecated alias.
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found; a CIFAR-10 directory must hold {_CIFAR_TRAIN}"
            f" and {_CIFAR_TEST!r} (the python version)."
        )
    try:
        batch = _CifarUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except Exception as e:  # Any unpickling failure means the file is not a CIFAR batch.
        raise ValueError(
            f"{path} is not a CIFAR-10 python batch ({type(e).__name__}: {e})."
        ) from e
    if not isinstance(batch, dict):
        raise ValueError(f"{path} is not a CIFAR-10 python batch (it holds a {type(batch)}).")
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(b"labels", batch.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"{path} is not a CIFAR-10 python batch (no 'data' or 'labels' key).")
    # Checked before any conversion: a list of shared references (a few bytes of pickle)
    # would expand to gigabytes in np.asarray. CIFAR batches hold an array and a list of ints.
    if not isinstance(data, np.ndarray):
        raise ValueError(
            f"{path}: 'data' must be a uint8 array of shape (N, {_CIFAR_PIXELS}), but got a "
            f"{type(data).__name__}."
        )
    if isinstance(labels, list) and not all(type(x) is int for x in labels):
        raise ValueError(f"{path}: 'labels' must be a list of integers.")
    if not isinstance(labels, (list, np.ndarray)):
        raise ValueError(f"{path}: 'labels' must be a list of integers.")
    labels = np.asarray(labels)
    if data.ndim != 2 or data.shape[1] != _CIFAR_PIXELS or data.dtype != np.uint8:
        raise ValueError(
            f"{path}: 'data' must be a uint8 array of shape (N, {_CIFAR_PIXELS}), but got "
            f"{data.dtype} {data.shape}."
        )
    if labels.shape != (data.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"{path}: 'labels' must hold {data.shape[0]} integers, but got {labels.shape}."
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: 'labels' must be in [0, 9].")
    return data.reshape(-1, 3, _CIFAR_SIDE, _CIFAR_SIDE), labels.astype(np.int64)


def load_cifar10(path: str | Path, *, n_valid: int = 5000) -> ImageData:
    """CIFAR-10 from the python pickle batches (``data_batch_1..5``, ``test_batch``).

    As in ENAS (``src/cifar10/data_utils.py``, ``read_data(num_valids=5000)``), the last
    ``n_valid`` training images form the validation split, pixels are scaled to ``[0, 1]`` and
    every split is standardized per channel with the training split's mean and std.

    The files are unpickled with an allow-list (containers and NumPy arrays only).

    Args:
        path: The ``cifar-10-batches-py`` directory.
        n_valid: Training images held out for validation (ENAS: 5000).

    Raises:
        FileNotFoundError: ``path`` or a batch file does not exist.
        ValueError: A batch file is corrupt or not in the CIFAR-10 format.
    """
    if isinstance(n_valid, bool) or not isinstance(n_valid, int) or n_valid < 1:
        raise ValueError(f"n_valid must be a positive integer, but got {n_valid!r}.")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"path={str(path)!r}: CIFAR-10 directory does not exist.")
    parts = [_read_cifar_batch(root / name) for name in _CIFAR_TRAIN]
    test_x, test_y = _read_cifar_batch(root / _CIFAR_TEST)
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    if n_valid >= len(y):
        raise ValueError(
            f"n_valid must be smaller than the {len(y)} training images, but got {n_valid}."
        )
    x = x.astype(np.float64) / 255.0
    train_x, valid_x, test_xt = _standardize(
        x[:-n_valid], x[-n_valid:], test_x.astype(np.float64) / 255.0
    )
    _logger.info(
        "Loaded CIFAR-10 from %s: %d/%d/%d images.", root, len(y) - n_valid, n_valid, len(test_y)
    )
    return ImageData(
        train_x=train_x,
        train_y=torch.from_numpy(np.ascontiguousarray(y[:-n_valid])),
        valid_x=valid_x,
        valid_y=torch.from_numpy(np.ascontiguousarray(y[-n_valid:])),
        test_x=test_xt,
        test_y=torch.from_numpy(test_y),
        n_classes=10,
        name=f"cifar10({root})",
    )
