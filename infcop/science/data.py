"""Data sets by name (DATASETS), held as tensors, split deterministically into train / validation / test.
Cheap to import: torch loads when data is."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from .. import InfcopError
from .registry import Registry

if TYPE_CHECKING:
    import torch

DATASETS = Registry("data set")
# The test split of `digits` is fixed across seeds so that every seed is scored on the same images.
DIGITS_TEST_FRACTION = 0.2
DIGITS_TEST_SEED = 12345
DIGITS_SIZE = 1797


@dataclass
class Split:
    x: "torch.Tensor"  # float32, (N, C, H, W) images or (N, C, L) 1-D signals, standardised (Dataset.mean/std)
    y: "torch.Tensor"  # int64, (N,)

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device) -> "Split":
        return Split(self.x.to(device), self.y.to(device))


@dataclass
class Dataset:
    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    augment: bool  # random crop + flip on training batches (CIFAR)
    content_hash: str = ""  # of the data itself (not its path): part of every stage's resume fingerprint
    # the standardisation applied to every split (the training split's per-channel statistics, shaped
    # (1, C, 1, 1) or (1, C, 1) to broadcast over a batch): a ticket records it to take raw inputs
    mean: "torch.Tensor | None" = None
    std: "torch.Tensor | None" = None

    @property
    def in_channels(self) -> int:
        return self.train.x.shape[1]

    @property
    def image_size(self) -> int:
        """The side of an image, or the length of a 1-D signal."""
        return self.train.x.shape[-1]

    @property
    def signal(self) -> int:
        """2 for images, 1 for 1-D signals."""
        return self.train.x.dim() - 2

    def to(self, device) -> "Dataset":
        return Dataset(self.name, self.train.to(device), self.val.to(device), self.test.to(device),
                       self.num_classes, self.augment, self.content_hash,
                       *(None if t is None else t.to(device) for t in (self.mean, self.std)))


def _carve(x, y, fraction: float, seed: int):
    """Split off a `fraction` of (x, y), drawn with `seed`; returns (rest, carved)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y), generator=g)
    n = int(round(len(y) * fraction))
    held, rest = perm[:n].sort().values, perm[n:].sort().values
    return Split(x[rest], y[rest]), Split(x[held], y[held])


def standardisation(train_x):
    """(mean, std): per-channel statistics of the training images only, so that no information from
    val/test leaks in; shaped to broadcast over a batch."""
    dims = (0, *range(2, train_x.dim()))  # all but the channel: images and 1-D signals alike
    return train_x.mean(dim=dims, keepdim=True), train_x.std(dim=dims, keepdim=True).clamp_min(1e-6)


def digits_arrays():
    """scikit-learn's bundled digits (1,797 8x8 images), through its public loader (the warm start imports
    scikit-learn once per run; a cold job pays about a second for it)."""
    import numpy as np

    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise InfcopError("data set 'digits' needs scikit-learn installed (pip install scikit-learn)") from None
    digits = load_digits()
    return digits.images.astype(np.float32), digits.target.astype(np.int64)


def _digits(data_dir=None, download=False):
    """scikit-learn's 1,797 8x8 digits, with a test split fixed across seeds."""
    import torch

    images, target = digits_arrays()
    x = torch.from_numpy(images).unsqueeze(1) / 16.0
    y = torch.from_numpy(target)
    train, test = _carve(x, y, DIGITS_TEST_FRACTION, DIGITS_TEST_SEED)
    return train.x, train.y, test.x, test.y, 10, False


def _torchvision(name: str, cls_name: str, data_dir: Path, download: bool):
    """A torchvision data set read by torchvision's own class from `data_dir`."""
    import torch
    import torchvision.datasets as tvd

    cls = getattr(tvd, cls_name)
    root = Path(data_dir)
    if not download and not root.is_dir():
        raise InfcopError(
            f"data set '{name}': data_dir '{root}' does not exist; put the {cls.__name__} files there "
            f"(torchvision looks in '{root / cls.__name__}' or '{root}') or set data.download: true "
            f"on a machine with internet access")
    try:
        parts = [cls(root=str(root), train=t, download=download) for t in (True, False)]
    except Exception as exc:  # torchvision raises RuntimeError for missing files, others for corrupt ones
        folder = root / cls.__name__ if name.startswith("mnist") or name == "fashion_mnist" else root
        raise InfcopError(
            f"data set '{name}': could not read it from '{folder}' ({type(exc).__name__}: {exc}); "
            f"check the files there or set data.download: true to let torchvision fetch it") from None
    out, digest = [], hashlib.blake2b(digest_size=16)
    for ds in parts:
        data = ds.data
        raw = data.numpy() if isinstance(data, torch.Tensor) else data
        digest.update(raw.tobytes())  # the raw uint8 images: 4x less to hash than the floats
        digest.update(bytes(str(list(ds.targets)), "ascii"))
        if isinstance(data, torch.Tensor):  # MNIST-like: (N, H, W) uint8
            x = data.float().unsqueeze(1) / 255.0
        else:  # CIFAR: numpy (N, H, W, C) uint8
            x = torch.from_numpy(data).permute(0, 3, 1, 2).float() / 255.0
        y = torch.as_tensor(ds.targets, dtype=torch.int64)
        if len(y) == 0 or len(x) != len(y):
            raise InfcopError(f"data set '{name}': files under '{root}' hold no usable images")
        out += [x, y]
    num_classes = 100 if name == "cifar100" else 10
    return out[0], out[1], out[2], out[3], num_classes, name.startswith("cifar"), digest.hexdigest()


MNIST1D_DEFAULTS = {"num_samples": 5000, "seed": 42}  # the package's reference split: 4,000 / 1,000


def mnist1d_sizes(num_samples: int) -> tuple[int, int]:
    """(train, test) sizes the generator gives: whole samples per class, its train_split 0.8."""
    n = num_samples // 10 * 10
    return int(n * 0.8), n - int(n * 0.8)


def mnist1d_arrays(num_samples: int, seed: int):
    """MNIST-1D (Greydanus & Kobak 2024) made by the `mnist1d` package's own generator with its default
    parameters but `num_samples` and `seed`: (x, y, x_test, y_test) as numpy arrays. Never its download."""
    import random

    import numpy as np

    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError:
        raise InfcopError("data set 'mnist1d' needs the mnist1d package (pip install mnist1d)") from None
    args = get_dataset_args()
    args.num_samples, args.seed = int(num_samples), int(seed)
    state, py_state = np.random.get_state(), random.getstate()  # it seeds the global generators
    try:
        d = make_dataset(args)
    finally:
        np.random.set_state(state)
        random.setstate(py_state)
    return (d["x"].astype(np.float32), d["y"].astype(np.int64), d["x_test"].astype(np.float32),
            d["y_test"].astype(np.int64))


def mnist1d_version() -> str:
    """The installed generator's version: part of the cache's name, as another version may make other data."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mnist1d")
    except PackageNotFoundError:
        return "none"


def _mnist1d(data_dir: Path, download=False, num_samples: int = 5000, seed: int = 42):
    """MNIST-1D generated once per (num_samples, seed) and cached under data_dir/mnist1d (a .npz written
    atomically); a cache that does not read back whole is made again."""
    import numpy as np
    import torch

    from ..running.checkpoints import atomic_write

    path = Path(data_dir) / "mnist1d" / f"mnist1d-n{int(num_samples)}-seed{int(seed)}-v{mnist1d_version()}.npz"
    arrays = None
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = tuple(f[k] for k in ("x", "y", "x_test", "y_test"))
        except Exception:  # noqa: BLE001 - cut short or corrupt (zip, pickle-free npy, keys): generate again
            arrays = None
    if arrays is None:
        arrays = mnist1d_arrays(num_samples, seed)
        import io

        buffer = io.BytesIO()
        np.savez(buffer, **dict(zip(("x", "y", "x_test", "y_test"), arrays)))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda f: f.write(buffer.getvalue()))
        except OSError as exc:
            raise InfcopError(f"data set 'mnist1d': cannot cache it under '{path.parent}' ({exc.strerror}); "
                              "set data.data_dir to a writable folder") from None
    x, y, sx, sy = (torch.from_numpy(np.ascontiguousarray(a)) for a in arrays)
    return x.unsqueeze(1), y, sx.unsqueeze(1), sy, 10, False


# train_size / test_size: the images of the training split (before validation is carved from it) and of the
# test split, so that every split and batch size is checked before any job loads data. A data set
# registered without them (a plugin) skips those checks.
_DIGITS_TEST = int(round(DIGITS_SIZE * DIGITS_TEST_FRACTION))  # as _carve rounds
DATASETS.add("digits", _digits, bundled=True, label="digits (8x8)", train_size=DIGITS_SIZE - _DIGITS_TEST,
             test_size=_DIGITS_TEST)
DATASETS.add("mnist1d", _mnist1d, bundled=True, generated=True, signal=1, label="MNIST-1D",
             train_size=lambda data: mnist1d_sizes(data.get("num_samples", 5000))[0],
             test_size=lambda data: mnist1d_sizes(data.get("num_samples", 5000))[1])
for _name, _cls, _train in (("mnist", "MNIST", 60_000), ("fashion_mnist", "FashionMNIST", 60_000),
                            ("cifar10", "CIFAR10", 50_000), ("cifar100", "CIFAR100", 50_000)):
    DATASETS.add(_name, partial(_torchvision, _name, _cls), bundled=False, folder=_cls, label=_cls,
                 train_size=_train, test_size=10_000)


PER_RUN = "per_run"  # data.seed: each run seed generates its own data set


def variance_sources(dataset: str, data_seed) -> str:
    """What an interval over run seeds covers for `dataset`, in words."""
    generated = dataset in DATASETS and DATASETS.get(dataset).info.get("generated")
    if generated and data_seed == PER_RUN:
        return "initialisation, batch order and the data (each seed generates its own train, validation and test data)"
    if generated:
        return ("initialisation, batch order and the validation split, not the data (every seed uses the one "
                f"generated draw of data.seed {data_seed}; data.seed: per_run would cover it)")
    return "initialisation, batch order and the validation split, not the data (one fixed data set)"


def load_dataset(name: str, seed: int, val_fraction: float = 0.1, data_dir: str | Path = "data",
                 download: bool = False, num_samples: int | None = None,
                 data_seed: int | str | None = None, standardise: bool = True) -> Dataset:
    """Train / validation / test splits of `name`; the validation split is carved from the training
    data with `seed`, so it differs between seeds while the test split does not. A generated data set
    (mnist1d) is made with `num_samples` and `data_seed` (its generator's seed, the same for every run), or
    with data_seed 'per_run' by generator seed `seed`: every run seed its own train, validation and test
    data, the same for every method of that seed. With standardise=False the splits hold the raw inputs a
    ticket takes (infcop.load_ticket); mean and std are still the statistics a standardised load applies."""
    if name not in DATASETS:
        raise InfcopError(f"unknown dataset '{name}'; known: {', '.join(DATASETS.names())}")
    if not 0 < val_fraction < 1:
        raise InfcopError(f"data.val_fraction must be in (0, 1), got {val_fraction}")
    entry = DATASETS.get(name)
    generator = {}
    if entry.info.get("generated"):
        generator = {"num_samples": num_samples or MNIST1D_DEFAULTS["num_samples"],
                     "seed": (MNIST1D_DEFAULTS["seed"] if data_seed is None
                              else int(seed) if data_seed == PER_RUN else int(data_seed))}
    loaded = entry.obj(Path(data_dir), download, **generator)
    tx, ty, sx, sy, k, aug = loaded[:6]
    content = loaded[6] if len(loaded) > 6 else tensors_hash(tx, ty, sx, sy)
    train, val = _carve(tx, ty, val_fraction, 1000 + seed)
    mean, std = standardisation(train.x)
    trx, vx, sx = ((t - mean) / std if standardise else t for t in (train.x, val.x, sx))
    return Dataset(name, Split(trx, train.y), Split(vx, val.y), Split(sx, sy), k, aug, content, mean, std)


def tensors_hash(*tensors) -> str:
    """A digest of tensors' contents (shape, dtype and bytes)."""
    digest = hashlib.blake2b(digest_size=16)
    for t in tensors:
        t = t.detach().cpu().contiguous()
        digest.update(f"{tuple(t.shape)}{t.dtype}".encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()


def augment_batch(x, generator, pad: int = 4):
    """Standard CIFAR augmentation on a batch already on its device: random crop after zero padding,
    then random horizontal flip; vectorised, driven by `generator` so epochs are reproducible."""
    import torch

    b, c, h, w = x.shape
    dev = x.device
    shift = torch.randint(0, 2 * pad + 1, (2, b), generator=generator).to(dev)
    flip = (torch.rand(b, generator=generator) < 0.5).to(dev)
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    rows = (torch.arange(h, device=dev)[None, :] + shift[0][:, None])  # (b, h)
    cols = (torch.arange(w, device=dev)[None, :] + shift[1][:, None])  # (b, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    bi = torch.arange(b, device=dev)[:, None, None, None]
    ci = torch.arange(c, device=dev)[None, :, None, None]
    return padded[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]


def batches(split: Split, batch_size: int, generator=None, augment: bool = False):
    """Yield (x, y) batches: shuffled by `generator` when given, in order otherwise. No workers: the
    split is already a tensor (on the training device)."""
    import torch

    n = len(split)
    if generator is not None:
        order = torch.randperm(n, generator=generator).to(split.x.device)
    else:
        order = None
    for start in range(0, n, batch_size):
        if order is None:
            xb, yb = split.x[start:start + batch_size], split.y[start:start + batch_size]
        else:
            idx = order[start:start + batch_size]
            xb, yb = split.x[idx], split.y[idx]
        if augment and generator is not None:
            xb = augment_batch(xb, generator)
        yield xb, yb


def probe_split(train: Split, size: int, seed: int) -> Split:
    """The fixed probe subset of the training split on which every flow is measured."""
    import torch

    size = min(size, len(train))
    g = torch.Generator().manual_seed(2000 + seed)
    idx = torch.randperm(len(train), generator=g)[:size].sort().values.to(train.x.device)
    return Split(train.x[idx], train.y[idx])
