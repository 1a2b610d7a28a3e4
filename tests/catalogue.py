"""The catalogue of bad inputs: each case, the command line it runs and the message it must print.

`tests/test_catalogue.py` runs every case through ``python -m src.main`` and
`benchmarks/reliability_report.py` counts them. A case is a list of overrides, an
optional ``setup`` that writes the bad file it needs under a scratch folder (``{tmp}`` in
an override is replaced by that folder), and a regular expression the output must match.
"""

from __future__ import annotations

import gzip
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Case:
    """One bad input and the message the harness must print for it.

    Attributes
    ----------
    name : str
        Short id, used as the test id and in the README table.
    kind : str
        ``config``, ``data`` or ``environment``.
    mistake : str
        The mistake, in the words of the README's troubleshooting table.
    overrides : list of str
        Command-line arguments after ``python -m src.main``.
    message : str
        Regular expression the output must match.
    setup : callable, optional
        Called with the scratch folder before the run, to write bad files.
    env : dict of str to str
        Extra environment variables; ``{tmp}`` is replaced as in overrides.
    exit_code : int
        Expected exit status: 2 for rejected input, 1 for Hydra's own errors and failed writes.
    before_heavy_work : bool
        Whether the error comes before training starts. False for faults that can only
        happen during a run (a disk that fills while artifacts are written).
    absent : str, optional
        Text the output must not contain, such as a password.
    """

    name: str
    kind: str
    mistake: str
    overrides: list[str]
    message: str
    setup: Callable[[Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)
    exit_code: int = 2
    before_heavy_work: bool = True
    absent: str | None = None


def _mnist_arrays(n_train: int = 40, n_test: int = 20) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": (np.arange(n_train) % 10).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": (np.arange(n_test) % 10).astype(np.uint8),
    }


def _write_npz(**changes) -> Callable[[Path], None]:
    def setup(tmp: Path) -> None:
        arrays = {**_mnist_arrays(), **changes}
        np.savez(tmp / "mnist.npz", **{key: value for key, value in arrays.items() if value is not None})

    return setup


def _truncated_npz(tmp: Path) -> None:
    _write_npz()(tmp)
    content = (tmp / "mnist.npz").read_bytes()
    (tmp / "mnist.npz").write_bytes(content[: len(content) // 2])


def _not_a_zip(tmp: Path) -> None:
    (tmp / "mnist.npz").write_bytes(b"<html>404 Not Found</html>")


def _idx_bytes(array: np.ndarray) -> bytes:
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_idx_folder(tmp: Path, broken: dict[str, bytes] | None = None) -> None:
    folder = tmp / "idx"
    folder.mkdir()
    arrays = _mnist_arrays()
    files = {
        "train-images-idx3-ubyte.gz": _idx_bytes(arrays["x_train"]),
        "train-labels-idx1-ubyte.gz": _idx_bytes(arrays["y_train"]),
        "t10k-images-idx3-ubyte.gz": _idx_bytes(arrays["x_test"]),
        "t10k-labels-idx1-ubyte.gz": _idx_bytes(arrays["y_test"]),
        **(broken or {}),
    }
    for name, content in files.items():
        with gzip.open(folder / name, "wb") as handle:
            handle.write(content)


def _idx_bad_magic(tmp: Path) -> None:
    images = _idx_bytes(_mnist_arrays()["x_train"])
    _write_idx_folder(tmp, {"train-images-idx3-ubyte.gz": b"\x1f\x8b" + images[2:]})


def _idx_short(tmp: Path) -> None:
    images = _idx_bytes(_mnist_arrays()["x_train"])
    _write_idx_folder(tmp, {"train-images-idx3-ubyte.gz": images[:-784]})


def _folder_without_files(tmp: Path) -> None:
    (tmp / "downloads").mkdir()
    (tmp / "downloads" / "readme.txt").write_text("not MNIST")


def _nan_pixels(tmp: Path) -> None:
    images = _mnist_arrays()["x_train"].astype(np.float32) / 255
    images[3, 14, 14] = np.nan
    _write_npz(x_train=images)(tmp)


def _infinite_pixels(tmp: Path) -> None:
    images = _mnist_arrays()["x_test"].astype(np.float32) / 255
    images[0, 0, 0] = np.inf
    _write_npz(x_test=images)(tmp)


def _labels_outside_digits(tmp: Path) -> None:
    labels = _mnist_arrays()["y_train"].astype(np.int64)
    labels[:2] = [12, -1]
    _write_npz(y_train=labels)(tmp)


NPZ = ["data=mnist", "data.path={tmp}/mnist.npz", "knn.k=[3]"]

CASES = [
    # Config: every range and type rule, unknown options and keys.
    Case("dropout-range", "config", "`dropout` of 1 or more", ["dropout=1.0"],
         r"dropout must be a number in \[0, 1\), that is from 0 up to but not including 1; got 1\.0\. Set e\.g\. dropout=0\.5"),
    Case("dropout-type", "config", "`dropout` that is not a number", ["dropout=half"],
         r"dropout must be a number in \[0, 1\), .*; got 'half'\. Set e\.g\. dropout=0\.5"),
    Case("hidden-units-zero", "config", "a hidden layer of 0 units", ["model.hidden_units=[256,0]"],
         r"model\.hidden_units must be a non-empty list of whole numbers >= 1, e\.g\. model\.hidden_units=\[256,64\]; got \[256, 0\]"),
    Case("hidden-units-empty", "config", "no hidden layer", ["model.hidden_units=[]"],
         r"model\.hidden_units must be a non-empty list .*; got \[\]"),
    Case("hidden-units-type", "config", "`hidden_units` not a list", ["model.hidden_units=256"],
         r"model\.hidden_units must be a non-empty list .*; got 256"),
    Case("activation", "config", "unknown activation", ["model.activation=relux"],
         r"model\.activation must be one of .*relu.*; got 'relux'"),
    Case("epochs-range", "config", "`train.epochs` below 1", ["train.epochs=0"],
         r"train\.epochs must be a whole number >= 1; got 0"),
    Case("epochs-type", "config", "`train.epochs` not whole", ["train.epochs=2.5"],
         r"train\.epochs must be a whole number >= 1; got 2\.5"),
    Case("batch-size", "config", "`train.batch_size` below 1", ["train.batch_size=0"],
         r"train\.batch_size must be a whole number >= 1; got 0"),
    Case("optimizer", "config", "unknown optimizer", ["train.optimizer=adamm"],
         r"train\.optimizer must be one of .*adam.*; got 'adamm'"),
    Case("learning-rate", "config", "`train.learning_rate` of 0 or less", ["train.learning_rate=0"],
         r"train\.learning_rate must be a number > 0; got 0"),
    Case("k-empty", "config", "empty `knn.k`", ["knn.k=[]"],
         r"knn\.k must be a non-empty list of whole numbers; got \[\]\. Set e\.g\. `knn\.k=\[3,5,10\]`"),
    Case("k-zero", "config", "a k below 1", ["knn.k=[0,5]"],
         r"knn\.k must be whole numbers >= 1; got \[0, 5\]\. Remove the values below 1, e\.g\. `knn\.k=\[3,5,10\]`"),
    Case("k-too-large", "config", "a k not below the number of training digits", ["knn.k=[3,5000]"],
         r"knn\.k must be below the number of training digits, 4000; got \[3, 5000\]\. Lower the largest k \(at most 3999\)"),
    Case("k-repeated", "config", "the same k twice", ["knn.k=[3,3]"],
         r"knn\.k must not repeat a value; got \[3, 3\]\. Set e\.g\. `knn\.k=\[3,5,10\]`"),
    Case("k-not-list", "config", "`knn.k` a number, not a list", ["knn.k=5"],
         r"knn\.k must be a non-empty list of whole numbers; got 5"),
    Case("embedder-option", "config", "unknown embedder option", ["embedder=isomap"],
         r"(?s)Could not find 'embedder/isomap'.*Available options in 'embedder':\s+pca\s+trimap\s+tsne\s+umap",
         exit_code=1),
    Case("data-option", "config", "unknown dataset option", ["data=cifar"],
         r"(?s)Could not find 'data/cifar'.*Available options in 'data':\s+digits\s+mnist\s+mnist_sample",
         exit_code=1),
    Case("embedder-name", "config", "unknown `embedder.name`", ["embedder.name=isomap"],
         r"embedder must be one of pca, tsne, umap, trimap; got 'isomap'\. Choose one with e\.g\. `embedder=umap`"),
    Case("protocol", "config", "unknown protocol", ["embedder.protocol=online"],
         r"embedder\.protocol must be one of transductive, inductive; got 'online'"),
    Case("trimap-inductive", "config", "TriMAP with the inductive protocol",
         ["embedder=trimap", "embedder.protocol=inductive"],
         r"(?s)TriMAP .*embedder\.protocol=transductive"),
    Case("embedder-param", "config", "misspelt embedder parameter", ["+embedder.nneighbors=30"],
         r"embedder\.nneighbors is not a parameter of embedder=umap; got 30\. Did you mean embedder\.n_neighbors=30 \(without \+\)\?"),
    Case("n-neighbors", "config", "UMAP `n_neighbors` below 2", ["embedder.n_neighbors=1"],
         r"embedder\.n_neighbors must be a whole number >= 2; got 1\. Set e\.g\. embedder\.n_neighbors=15, the value in conf/embedder/umap\.yaml"),
    Case("perplexity", "config", "t-SNE `perplexity` of 0 or less", ["embedder=tsne", "embedder.perplexity=-5"],
         r"embedder\.perplexity must be > 0; got -5\. Set e\.g\. embedder\.perplexity=30(\.0)?, the value in conf/embedder/tsne\.yaml"),
    Case("n-train-large", "config", "subsample larger than the dataset", ["data.n_train=4001"],
         r"data\.n_train must be at most 4000 for data=mnist_sample; got 4001"),
    Case("n-train-small", "config", "subsample too small to hold every digit", ["data.n_train=5"],
         r"data\.n_train must be at least 10 .*got 5"),
    Case("test-size", "config", "`data.test_size` outside (0, 1)", ["data.test_size=1.5"],
         r"data\.test_size must be a share in \(0, 1\) .*got 1\.5"),
    Case("val-size", "config", "`data.val_size` outside [0, 1)", ["data.val_size=1"],
         r"data\.val_size must be a number in \[0, 1\) or null; got 1\. Set e\.g\. data\.val_size=0\.25"),
    Case("val-size-classes", "config", "validation share that leaves a digit out", ["data.val_size=0.999"],
         r"data\.val_size=0\.999 splits 4000 training digits into 4 to fit and 3996 to validate"),
    Case("seed", "config", "negative seed", ["seed=-1"],
         r"seed must be a whole number from 0 to 4294967295; got -1\. Set e\.g\. seed=0"),
    Case("progress", "config", "`progress` not true or false", ["progress=maybe"],
         r"progress must be true or false; got 'maybe'"),
    Case("cache-enabled", "config", "`cache.enabled` not true or false", ["cache.enabled=1"],
         r"cache\.enabled must be true or false; got 1"),
    Case("unknown-key", "config", "misspelt key added with `+`", ["+train.epoch=5"],
         r"train\.epoch is not a config key; got train\.epoch=5\. Did you mean train\.epochs \(without \+\)\?"),
    Case("tracking-scheme", "config", "tracking URI that is a plain folder", ["tracking.uri=my_runs"],
         r"tracking\.uri must start with one of sqlite://.*got 'my_runs'\. MLflow 3 no longer writes to a plain folder"),
    Case("experiment-name", "config", "empty experiment name", ["tracking.experiment= "],
         r"tracking\.experiment must be a non-empty name; got ''\. Set e\.g\. tracking\.experiment=layer-maps"),
    Case("sweep-job", "config", "one invalid job in a sweep", ["-m", "dropout=0.5,1.5"],
         r"(?s)Invalid sweep: 1 of 2 jobs have an invalid config, so no job was started\.\njob 1 \(dropout=1\.5.*\):\n"
         r"  - dropout must be a number in \[0, 1\), .*; got 1\.5\..*Fix or remove these values in the sweep's overrides"),
    # Data files.
    Case("npz-truncated", "data", "truncated `mnist.npz`", NPZ,
         r"mnist\.npz cannot be read as an \.npz \(zip\) archive: the file is truncated, or it is not an npz file",
         setup=_truncated_npz),
    Case("npz-not-zip", "data", "`mnist.npz` that is not an archive (an HTML error page)", NPZ,
         r"mnist\.npz cannot be read as an \.npz \(zip\) archive: .*Download mnist\.npz again",
         setup=_not_a_zip),
    Case("npz-keys", "data", "npz with the wrong keys", NPZ,
         r"missing the arrays y_test; found x_train, y_train, x_test", setup=_write_npz(y_test=None)),
    Case("npz-shape", "data", "npz images of the wrong shape", NPZ,
         r"x_train in .*mnist\.npz must contain MNIST images .*got shape \(40, 27, 27\)",
         setup=_write_npz(x_train=np.zeros((40, 27, 27), dtype=np.uint8))),
    Case("labels", "data", "labels outside 0-9", NPZ,
         r"y_train in .*mnist\.npz must contain labels 0-9; found the invalid labels -1, 12\.", setup=_labels_outside_digits),
    Case("nan-pixels", "data", "NaN pixels", NPZ,
         r"x_train in .*mnist\.npz contains NaN or infinite pixels", setup=_nan_pixels),
    Case("infinite-pixels", "data", "infinite pixels", NPZ,
         r"x_test in .*mnist\.npz contains NaN or infinite pixels", setup=_infinite_pixels),
    Case("idx-magic", "data", "IDX file with a bad magic number",
         ["data=mnist", "data.path={tmp}/idx", "knn.k=[3]"],
         r"train-images-idx3-ubyte\.gz is not an MNIST IDX file: its first bytes must be 00 00, but they are 1f 8b .*, the start of a gzip file, so it may be compressed twice", setup=_idx_bad_magic),
    Case("idx-size", "data", "IDX file shorter than its header says",
         ["data=mnist", "data.path={tmp}/idx", "knn.k=[3]"],
         r"train-images-idx3-ubyte\.gz .*header\. The file is truncated or corrupt; download it again",
         setup=_idx_short),
    Case("path-missing", "data", "`data.path` that does not exist", ["data=mnist", "data.path={tmp}/nowhere.npz"],
         r"data\.path must be an existing mnist\.npz file or a folder with the four MNIST IDX files; got .*nowhere\.npz"),
    Case("path-folder", "data", "folder without the MNIST files",
         ["data=mnist", "data.path={tmp}/downloads", "knn.k=[3]"],
         r"missing the MNIST IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte", setup=_folder_without_files),
    Case("download-offline", "data", "MNIST not cached and no network",
         ["data=mnist"],
         r"(?s)reads the Keras cache .*datasets/mnist\.npz, which does not exist, and downloading MNIST .*failed.*"
         r"Offline, use data=mnist_sample .*or set data\.path",
         # A proxy on a closed loopback port fails the download at once, with or without network.
         env={"KERAS_HOME": "{tmp}/keras", "https_proxy": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9"}),
    # Environment.
    Case("tracking-unwritable", "environment", "`mlruns/` that cannot be written",
         ["tracking.uri=sqlite:////proc/mlruns/mlflow.db"],
         # /proc refuses new files even for root, where a chmod would not.
         r"tracking\.uri='sqlite:////proc/mlruns/mlflow\.db' needs the folder /proc/mlruns, which cannot be created .*Set tracking\.uri to a folder you can write, e\.g\. tracking\.uri=sqlite:////tmp/mlruns/mlflow\.db"),
    Case("cache-unwritable", "environment", "cache folder that cannot be written", ["cache.dir=/proc/layer-maps-cache"],
         r"cache\.dir='/proc/layer-maps-cache' needs the folder /proc/layer-maps-cache, which cannot be created .*cache\.enabled=false"),
    Case("server-down", "environment", "tracking server that does not answer", ["tracking.uri=http://127.0.0.1:9"],
         r"tracking\.uri=http://127\.0\.0\.1:9: no server responds at 127\.0\.0\.1:9"),
    Case("server-credentials", "environment", "tracking URI with a password, server down",
         ["tracking.uri=http://alice:s3cret@127.0.0.1:9"],
         r"tracking\.uri=http://127\.0\.0\.1:9: no server responds at 127\.0\.0\.1:9", absent="s3cret"),
    Case("server-credentials-sweep", "environment", "sweep with a password in the tracking URI, server down",
         ["-m", "tracking.uri=http://alice:s3cret@127.0.0.1:9", "embedder=pca,umap"],
         r"tracking\.uri=http://127\.0\.0\.1:9: no server responds at 127\.0\.0\.1:9", absent="s3cret"),
    Case("disk-full", "environment", "disk that fills while artifacts are written",
         ["data=digits", "model.hidden_units=[16]", "train.epochs=1", "embedder=pca", "progress=false"],
         r"A write failed because the disk is full \(No space left on device: .*\)\. The MLflow run ended FAILED "
         r"and keeps what it had logged",
         env={"LAYER_MAPS_FAULT": "artifacts:ENOSPC"}, exit_code=1, before_heavy_work=False),
]
