"""Check the composed config before any data is loaded or TensorFlow is imported.

Every rule reports the config key, the rule, the value received and, where there is
one, the fix. All broken rules are reported together, so one run shows every mistake.
"""

from __future__ import annotations

import difflib
import math
import numbers
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlparse

from src.data import expected_sizes
from src.embedding import validate_embedder_config
from src.errors import ConfigError
from src.evolution import validate_evolution_config
from src.model import ACTIVATIONS, N_CLASSES, OPTIMIZERS
from src.paths import resolve_path
from src.quality import validate_quality_config
from src.scoring import validate_k
from src.tracking import resolve_tracking_uri


# Keys of each config section, as the files in conf/ define them. A key added on the
# command line with `+` that is not here is rejected instead of silently ignored. The
# embedder's keys are checked against its library's parameters instead, and the keys of
# quality and evolution by their own validators.
KNOWN_KEYS = {
    "": {
        "data", "model", "train", "embedder", "knn", "tracking", "cache", "quality", "evolution",
        "dropout", "seed", "progress",
    },
    "data": {"name", "path", "test_size", "val_size", "n_train", "n_test"},
    "model": {"name", "hidden_units", "activation"},
    "train": {"epochs", "batch_size", "optimizer", "learning_rate"},
    "knn": {"k"},
    "tracking": {"uri", "experiment"},
    "cache": {"enabled", "dir"},
}

# Schemes of the tracking stores MLflow 3 accepts; the plain file store is no longer one of them.
TRACKING_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks")


# Values the messages suggest for the training settings: the defaults in conf/train/default.yaml.
_TRAIN_EXAMPLES = {"epochs": 20, "batch_size": 128}

# Examples for the messages about a folder that cannot be written.
_FOLDER_EXAMPLES = {
    "tracking.uri": ", e.g. tracking.uri=sqlite:////tmp/mlruns/mlflow.db, or drop the override to use mlruns/",
    "cache.dir": ", e.g. cache.dir=/tmp/layer-maps-cache, or turn the cache off with cache.enabled=false",
}


def _did_you_mean(key: str, known, section: str) -> str:
    """Return " Did you mean <section>.<close key> (without +)?" for a near miss, else ""."""
    close = difflib.get_close_matches(key, sorted(known), n=1)
    if not close:
        return ""
    return f" Did you mean {section + '.' if section else ''}{close[0]} (without +)?"


def _check_known_keys(cfg: Mapping, problems: list[str]) -> None:
    for section, known in KNOWN_KEYS.items():
        values = cfg if not section else cfg.get(section)
        if not isinstance(values, Mapping):
            continue
        for key in sorted(set(values) - known):
            name = f"{section}.{key}" if section else key
            problems.append(
                f"{name} is not a config key; got {name}={values[key]!r}.{_did_you_mean(key, known, section)} "
                f"Known keys{' of ' + section if section else ''}: {', '.join(sorted(known))}."
            )


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_writable_folder(key: str, value: str, folder: Path, problems: list[str]) -> None:
    """Check that ``folder`` exists or can be created, by writing a probe file where it would be."""
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        problems.append(
            f"{key}={value!r} needs the folder {folder}, but {existing} is a file. "
            f"Set {key} to a folder you can write{_FOLDER_EXAMPLES[key]}."
        )
        return
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        problems.append(
            f"{key}={value!r} needs the folder {folder}, which cannot be created because {existing} "
            f"does not accept new files ({error.strerror}). Set {key} to a folder you can write{_FOLDER_EXAMPLES[key]}."
        )


def _check_tracking_uri(uri, problems: list[str]) -> None:
    if uri is None:
        return
    if not isinstance(uri, str):
        problems.append(f"tracking.uri must be null or an MLflow tracking URI string; got {uri!r}.")
        return
    scheme = urlparse(uri).scheme.split("+")[0]
    if scheme not in TRACKING_SCHEMES:
        problems.append(
            f"tracking.uri must start with one of {', '.join(s + '://' for s in TRACKING_SCHEMES)}; got {uri!r}. "
            "MLflow 3 no longer writes to a plain folder: use tracking.uri=sqlite:///path/to/mlflow.db."
        )
    elif scheme == "sqlite":
        database = Path(resolve_tracking_uri(uri)[len("sqlite:///"):])
        _check_writable_folder("tracking.uri", uri, database.parent, problems)


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_data(data: Mapping, problems: list[str]) -> tuple[int | None, int | None]:
    """Check the data group and return the numbers of training and test digits when they are known."""
    val_size = data.get("val_size")
    if val_size is not None and not (_is_number(val_size) and 0 <= val_size < 1):
        problems.append(
            f"data.val_size must be a number in [0, 1) or null; got {val_size!r}. "
            "Set e.g. data.val_size=0.25, or data.val_size=0 for no validation curves."
        )
    path = data.get("path")
    if path is not None and data.get("name") != "mnist":
        problems.append(
            f"data.path is read only by data=mnist; got data.path={path!r} with data={data.get('name')}. "
            "Add data=mnist, or remove data.path."
        )
    elif path is not None and not resolve_path(str(path)).exists():
        problems.append(
            f"data.path must be an existing mnist.npz file or a folder with the four MNIST IDX files; "
            f"got {path!r}, which resolves to {resolve_path(str(path))} and does not exist. "
            "Relative paths are read from the project root."
        )
    try:
        sizes = expected_sizes(data)
    except ConfigError as error:
        problems.append(str(error))
        return None, None
    if sizes is None:
        return None, None
    n_train, n_test = sizes
    if _is_number(val_size) and 0 < val_size < 1:
        # train_test_split holds out ceil(val_size * n) points; each side needs every digit.
        n_val = math.ceil(val_size * n_train)
        if min(n_val, n_train - n_val) < N_CLASSES:
            problems.append(
                f"data.val_size={val_size} splits {n_train} training digits into {n_train - n_val} to fit and "
                f"{n_val} to validate, but each side needs at least {N_CLASSES}, one per digit. "
                "Choose a share nearer 0.25, or set data.val_size=0 for no validation curves."
            )
    return n_train, n_test


def _check_model(cfg: Mapping, problems: list[str]) -> None:
    hidden_units = cfg["model"].get("hidden_units")
    if (
        not isinstance(hidden_units, (list, tuple))
        or not hidden_units
        or not all(_is_int(units) and units >= 1 for units in hidden_units)
    ):
        problems.append(
            "model.hidden_units must be a non-empty list of whole numbers >= 1, e.g. "
            f"model.hidden_units=[256,64]; got {hidden_units!r}."
        )
    activation = cfg["model"].get("activation")
    if activation not in ACTIVATIONS:
        problems.append(
            f"model.activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r}. Set e.g. model.activation=relu."
        )
    dropout = cfg.get("dropout")
    if not (_is_number(dropout) and 0 <= dropout < 1):
        problems.append(
            f"dropout must be a number in [0, 1), that is from 0 up to but not including 1; got {dropout!r}. "
            "Set e.g. dropout=0.5, or dropout=0 for none."
        )


def _check_train(train: Mapping, problems: list[str]) -> None:
    for key in ("epochs", "batch_size"):
        value = train.get(key)
        if not (_is_int(value) and value >= 1):
            problems.append(f"train.{key} must be a whole number >= 1; got {value!r}. Set e.g. train.{key}={_TRAIN_EXAMPLES[key]}.")
    if train.get("optimizer") not in OPTIMIZERS:
        problems.append(
            f"train.optimizer must be one of {', '.join(OPTIMIZERS)}; got {train.get('optimizer')!r}. Set e.g. train.optimizer=adam."
        )
    learning_rate = train.get("learning_rate")
    if not (_is_number(learning_rate) and learning_rate > 0):
        problems.append(f"train.learning_rate must be a number > 0; got {learning_rate!r}. Set e.g. train.learning_rate=0.001.")


def _check_run(cfg: Mapping, problems: list[str]) -> None:
    seed = cfg.get("seed")
    if not (_is_int(seed) and 0 <= seed < 2**32):
        problems.append(f"seed must be a whole number from 0 to 4294967295; got {seed!r}. Set e.g. seed=0.")
    if not isinstance(cfg.get("progress"), bool):
        problems.append(f"progress must be true or false; got {cfg.get('progress')!r}. Set progress=true or progress=false.")
    cache = cfg["cache"]
    if not isinstance(cache.get("enabled"), bool):
        problems.append(
            f"cache.enabled must be true or false; got {cache.get('enabled')!r}. Set cache.enabled=true or cache.enabled=false."
        )
    if not (isinstance(cache.get("dir"), str) and cache.get("dir").strip()):
        problems.append(f"cache.dir must be a folder path; got {cache.get('dir')!r}.")
    if isinstance(cache.get("dir"), str) and cache.get("dir").strip():
        _check_writable_folder("cache.dir", cache["dir"], resolve_path(cache["dir"]), problems)
    tracking = cfg["tracking"]
    _check_tracking_uri(tracking.get("uri"), problems)
    if not (isinstance(tracking.get("experiment"), str) and tracking.get("experiment").strip()):
        problems.append(
            f"tracking.experiment must be a non-empty name; got {tracking.get('experiment')!r}. "
            "Set e.g. tracking.experiment=layer-maps."
        )


def _section(cfg: Mapping, name: str) -> Mapping:
    """Return a config section that may be absent (an older config), as a mapping."""
    section = cfg.get(name)
    return {} if section is None else section


def _collect(check: Callable[[], None], problems: list[str]) -> None:
    """Run a check that raises ConfigError and keep its message."""
    try:
        check()
    except ConfigError as error:
        problems.append(str(error))


def validate_config(cfg: Mapping) -> None:
    """Raise ConfigError listing every broken rule of a composed config.

    Parameters
    ----------
    cfg : mapping
        The composed Hydra config as plain Python containers (``data``, ``model``, ``train``, ``embedder``,
        ``knn``, ``tracking``, ``dropout``, ``seed``, ``progress``).

    Raises
    ------
    ConfigError
        One line per broken rule.
    """
    problems: list[str] = []
    _check_known_keys(cfg, problems)
    n_train, n_test = _check_data(cfg["data"], problems)
    _check_model(cfg, problems)
    _check_train(cfg["train"], problems)
    _check_run(cfg, problems)
    _collect(lambda: validate_embedder_config(cfg["embedder"]), problems)
    _collect(lambda: validate_k(cfg["knn"].get("k"), n_train), problems)
    k = cfg["knn"].get("k")
    if isinstance(k, list) and len({repr(value) for value in k}) < len(k):
        problems.append(f"knn.k must not repeat a value; got {k}. Set e.g. `knn.k=[3,5,10]`.")
    n_points = None if n_train is None else n_train + n_test
    _collect(lambda: validate_quality_config(_section(cfg, "quality"), n_points), problems)
    _collect(lambda: validate_evolution_config(_section(cfg, "evolution")), problems)

    if problems:
        raise ConfigError("Invalid config:\n  - " + "\n  - ".join(problems))
