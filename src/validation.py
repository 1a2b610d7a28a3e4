"""Check the composed config before any data is loaded or TensorFlow is imported.

Every rule reports the config key, the rule, the value received and, where there is
one, the fix. All broken rules are reported together, so one run shows every mistake.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping

from src.data import expected_sizes
from src.embedding import validate_embedder_config
from src.errors import ConfigError
from src.model import ACTIVATIONS, OPTIMIZERS
from src.paths import resolve_path
from src.scoring import validate_k


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_data(data: Mapping, problems: list[str]) -> int | None:
    """Check the data group and return the number of training digits when it is known."""
    val_size = data.get("val_size")
    if val_size is not None and not (_is_number(val_size) and 0 <= val_size < 1):
        problems.append(f"data.val_size must be a number in [0, 1) or null; got {val_size!r}.")
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
        return None
    return sizes[0] if sizes else None


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
        problems.append(f"model.activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r}.")
    dropout = cfg.get("dropout")
    if not (_is_number(dropout) and 0 <= dropout < 1):
        problems.append(f"dropout must be a number in [0, 1); got {dropout!r}.")


def _check_train(train: Mapping, problems: list[str]) -> None:
    for key in ("epochs", "batch_size"):
        value = train.get(key)
        if not (_is_int(value) and value >= 1):
            problems.append(f"train.{key} must be a whole number >= 1; got {value!r}.")
    if train.get("optimizer") not in OPTIMIZERS:
        problems.append(f"train.optimizer must be one of {', '.join(OPTIMIZERS)}; got {train.get('optimizer')!r}.")
    learning_rate = train.get("learning_rate")
    if not (_is_number(learning_rate) and learning_rate > 0):
        problems.append(f"train.learning_rate must be a number > 0; got {learning_rate!r}.")


def _check_run(cfg: Mapping, problems: list[str]) -> None:
    seed = cfg.get("seed")
    if not (_is_int(seed) and 0 <= seed < 2**32):
        problems.append(f"seed must be a whole number in [0, 2**32); got {seed!r}.")
    if not isinstance(cfg.get("progress"), bool):
        problems.append(f"progress must be true or false; got {cfg.get('progress')!r}.")
    cache = cfg["cache"]
    if not isinstance(cache.get("enabled"), bool):
        problems.append(f"cache.enabled must be true or false; got {cache.get('enabled')!r}.")
    if not (isinstance(cache.get("dir"), str) and cache.get("dir").strip()):
        problems.append(f"cache.dir must be a folder path; got {cache.get('dir')!r}.")
    tracking = cfg["tracking"]
    if tracking.get("uri") is not None and not isinstance(tracking.get("uri"), str):
        problems.append(f"tracking.uri must be null or an MLflow tracking URI string; got {tracking.get('uri')!r}.")
    if not (isinstance(tracking.get("experiment"), str) and tracking.get("experiment").strip()):
        problems.append(f"tracking.experiment must be a non-empty name; got {tracking.get('experiment')!r}.")


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
    n_train = _check_data(cfg["data"], problems)
    _check_model(cfg, problems)
    _check_train(cfg["train"], problems)
    _check_run(cfg, problems)
    _collect(lambda: validate_embedder_config(cfg["embedder"]), problems)
    _collect(lambda: validate_k(cfg["knn"].get("k"), n_train), problems)

    if problems:
        raise ConfigError("Invalid config:\n  - " + "\n  - ".join(problems))
