import numpy as np
import pytest
import torch

from infcop import InfcopError
from infcop.science.data import augment_batch, batches, load_dataset, probe_split


def test_digits_splits_are_deterministic_and_disjoint():
    a, b = load_dataset("digits", seed=0), load_dataset("digits", seed=0)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.val.y, b.val.y)
    assert len(a.train) + len(a.val) + len(a.test) == 1797
    assert a.in_channels == 1 and a.image_size == 8 and a.num_classes == 10
    assert abs(len(a.val) / (len(a.train) + len(a.val)) - 0.1) < 0.01


def test_digits_come_whole_from_scikit_learns_loader_as_float32_images_and_int64_labels():
    import numpy as np

    from infcop.science.data import digits_arrays

    images, target = digits_arrays()
    assert images.shape == (1797, 8, 8) and images.dtype == np.float32 and target.dtype == np.int64
    assert images.min() == 0 and images.max() == 16 and np.bincount(target).min() >= 174


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


# ------------------------------------------------------------------------- MNIST-1D, generated offline

def test_mnist1d_reference_split_is_generated_balanced_deterministic_and_cached(tmp_path):
    import numpy as np

    from infcop.science.data import mnist1d_arrays

    x, y, sx, sy = mnist1d_arrays(5000, 42)  # the package's reference: 4,000 / 1,000 signals of 40 samples
    assert x.shape == (4000, 40) and sx.shape == (1000, 40) and x.dtype == np.float32
    assert np.bincount(np.concatenate([y, sy]), minlength=10).tolist() == [500] * 10
    again = mnist1d_arrays(5000, 42)
    assert all(np.array_equal(a, b) for a, b in zip((x, y, sx, sy), again))
    assert not np.array_equal(mnist1d_arrays(5000, 43)[0], x)  # the generator's seed matters
    d = load_dataset("mnist1d", seed=0, data_dir=tmp_path, val_fraction=0.25)
    assert d.train.x.shape == (3000, 1, 40) and len(d.val) == 1000 and len(d.test) == 1000 and d.signal == 1
    from infcop.science.data import mnist1d_version

    cache = tmp_path / "mnist1d" / f"mnist1d-n5000-seed42-v{mnist1d_version()}.npz"
    assert cache.is_file()
    assert load_dataset("mnist1d", seed=0, data_dir=tmp_path, val_fraction=0.25).content_hash == d.content_hash
    cache.write_bytes(cache.read_bytes()[:100])  # cut short: made again, same data
    assert load_dataset("mnist1d", seed=0, data_dir=tmp_path, val_fraction=0.25).content_hash == d.content_hash
    other = load_dataset("mnist1d", seed=0, data_dir=tmp_path, val_fraction=0.25, num_samples=600)
    assert len(other.test) == 120 and other.content_hash != d.content_hash


def test_mnist1d_sizes_are_declared_before_loading_and_archs_must_take_1d_signals():
    from infcop.experiments.config import check_config, split_sizes, with_defaults

    assert split_sizes("mnist1d", {"val_fraction": 0.15, "num_samples": 25000}) == {
        "train": 17000, "validation": 3000, "test": 5000}
    cfg = with_defaults({"experiment": {"datasets": ["mnist1d"], "archs": ["small_cnn"]}})
    with pytest.raises(InfcopError, match="architectures for 1-D signals.*mnist1d_cnn, mnist1d_mlp"):
        check_config(cfg)
    cfg = with_defaults({"experiment": {"datasets": ["digits"], "archs": ["mnist1d_cnn"]}})
    with pytest.raises(InfcopError, match="architectures for images"):
        check_config(cfg)
    check_config(with_defaults({"experiment": {"datasets": ["mnist1d"], "archs": ["mnist1d_cnn", "mnist1d_mlp"]}}))


@pytest.mark.parametrize("arch", ["mnist1d_cnn", "mnist1d_mlp"])
def test_dense_training_on_mnist1d_with_each_1d_network(tmp_path, arch):
    from conftest import fast_settings
    from infcop.running import steps

    settings = fast_settings()
    settings["dense"]["epochs"] = 4
    settings["data"].update(data_dir=str(tmp_path / "data"), num_samples=600)
    m = steps.train_dense("mnist1d", arch, 0, settings, tmp_path / "dense")
    losses = [e["train_loss"] for e in m["epochs"]]
    assert losses[-1] < losses[0] and len(m["layers"]) == (4 if arch == "mnist1d_cnn" else 3)
    assert all(np.isfinite(v) for v in m["cka"]) and m["cka"] == pytest.approx([1.0] * len(m["layers"]))


def test_per_run_data_differ_between_seeds_and_are_the_same_for_a_seed(tmp_path):
    from infcop.science.data import variance_sources

    a, b = (load_dataset("mnist1d", seed=s, data_dir=tmp_path, val_fraction=0.25, num_samples=600,
                         data_seed="per_run") for s in (0, 1))
    again = load_dataset("mnist1d", seed=0, data_dir=tmp_path, val_fraction=0.25, num_samples=600, data_seed="per_run")
    assert a.content_hash != b.content_hash and not torch.equal(a.test.x, b.test.x)  # train, val and test differ
    assert again.content_hash == a.content_hash and torch.equal(again.test.x, a.test.x)  # any method of seed 0
    fixed = [load_dataset("mnist1d", seed=s, data_dir=tmp_path, val_fraction=0.25, num_samples=600, data_seed=42)
             for s in (0, 1)]
    # one draw for every seed (inputs are standardised with each seed's training split, so compare the raw data)
    assert fixed[0].content_hash == fixed[1].content_hash and torch.equal(fixed[0].test.y, fixed[1].test.y)
    assert "the data (each seed" in variance_sources("mnist1d", "per_run")
    assert "not the data" in variance_sources("mnist1d", 42) and "not the data" in variance_sources("digits", "per_run")
