import pytest
import torch

from infcop import InfcopError
from infcop.data import augment_batch, batches, load_dataset, probe_split


def test_digits_splits_are_deterministic_and_disjoint():
    a, b = load_dataset("digits", seed=0), load_dataset("digits", seed=0)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.val.y, b.val.y)
    assert len(a.train) + len(a.val) + len(a.test) == 1797
    assert a.in_channels == 1 and a.image_size == 8 and a.num_classes == 10
    assert abs(len(a.val) / (len(a.train) + len(a.val)) - 0.1) < 0.01


def test_digits_file_reader_equals_sklearn_load_digits():
    from sklearn.datasets import load_digits

    from infcop.data import digits_arrays

    images, target = digits_arrays()
    ref = load_digits()
    assert (images == ref.images).all() and (target == ref.target).all()


def test_validation_differs_between_seeds_but_test_does_not():
    a, b = load_dataset("digits", seed=0), load_dataset("digits", seed=1)
    assert not torch.equal(a.val.y, b.val.y)
    assert torch.equal(a.test.y, b.test.y)


def test_val_fraction_is_configurable_and_checked():
    d = load_dataset("digits", seed=0, val_fraction=0.3)
    assert abs(len(d.val) / (len(d.train) + len(d.val)) - 0.3) < 0.01
    with pytest.raises(InfcopError, match="val_fraction"):
        load_dataset("digits", seed=0, val_fraction=1.5)


def test_unknown_dataset_lists_known():
    with pytest.raises(InfcopError, match="known: digits, mnist"):
        load_dataset("imagenet", seed=0)


def test_mnist_through_torchvision_idx_files(mnist_dir):
    d = load_dataset("mnist", seed=0, data_dir=mnist_dir, val_fraction=0.25)
    assert d.train.x.shape[1:] == (1, 28, 28)
    assert len(d.train) + len(d.val) == 48 and len(d.test) == 24
    assert d.num_classes == 10 and not d.augment
    # normalised with the training split's statistics
    assert abs(float(d.train.x.mean())) < 1e-4


def test_missing_data_dir_names_directory_and_download_option(tmp_path):
    with pytest.raises(InfcopError) as err:
        load_dataset("mnist", seed=0, data_dir=tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value) and "download" in str(err.value)


def test_empty_data_dir_names_where_torchvision_looked(tmp_path):
    with pytest.raises(InfcopError) as err:
        load_dataset("fashion_mnist", seed=0, data_dir=tmp_path)
    assert str(tmp_path / "FashionMNIST") in str(err.value) and "data.download: true" in str(err.value)


def test_corrupt_mnist_is_reported(mnist_dir):
    raw = mnist_dir / "MNIST" / "raw" / "train-images-idx3-ubyte"
    raw.write_bytes(raw.read_bytes()[:100])
    with pytest.raises(InfcopError, match="could not read"):
        load_dataset("mnist", seed=0, data_dir=mnist_dir)


def test_batches_cover_the_split_once_and_shuffle_by_generator():
    d = load_dataset("digits", seed=0)
    seen = torch.cat([y for _, y in batches(d.train, 100, torch.Generator().manual_seed(1))])
    assert torch.equal(seen.sort().values, d.train.y.sort().values)
    again = torch.cat([y for _, y in batches(d.train, 100, torch.Generator().manual_seed(1))])
    assert torch.equal(seen, again)


def test_augmentation_is_padded_random_crop_plus_flip_and_reproducible():
    x = torch.randn(16, 3, 32, 32)
    a = augment_batch(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, augment_batch(x, torch.Generator().manual_seed(0)))
    # reference: the same draws, applied one image at a time
    g = torch.Generator().manual_seed(0)
    shift = torch.randint(0, 9, (2, 16), generator=g)
    flip = torch.rand(16, generator=g) < 0.5
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(16):
        dy, dx = int(shift[0, i]), int(shift[1, i])
        want = padded[i, :, dy:dy + 32, dx:dx + 32]
        if flip[i]:
            want = want.flip(-1)
        assert torch.equal(a[i], want)
    assert flip.any() and (~flip).any()


def test_probe_is_a_fixed_subset_of_train():
    d = load_dataset("digits", seed=0)
    p1, p2 = probe_split(d.train, 50, 0), probe_split(d.train, 50, 0)
    assert len(p1) == 50 and torch.equal(p1.x, p2.x)
    assert len(probe_split(d.train, 10_000, 0)) == len(d.train)
