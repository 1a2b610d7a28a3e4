"""Embed activations in 2-D with PCA, t-SNE (openTSNE), UMAP or TriMAP.

Two protocols decide where the test points come from:

- ``transductive`` fits one map on the training and test points together (labels are never
  used) and splits the coordinates back. Every embedder supports it.
- ``inductive`` fits the map on the training points only and places the test points with the
  embedder's own out-of-sample method: ``PCA.transform``, openTSNE's
  ``TSNEEmbedding.transform`` or ``UMAP.transform``. TriMAP has no such method.

Test points are never embedded in a map of their own. openTSNE, umap-learn and trimap are
imported inside the functions that use them, because they load numba and compile its code,
which takes seconds to minutes in every new process.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import inspect
import logging
import numbers
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
from omegaconf import DictConfig, OmegaConf

from src.errors import ConfigError, DataError
from src.paths import PROJECT_ROOT

logger = logging.getLogger(__name__)

EMBEDDERS: tuple[str, ...] = ("pca", "tsne", "umap", "trimap")
PROTOCOLS: tuple[str, ...] = ("transductive", "inductive")
INDUCTIVE_EMBEDDERS: tuple[str, ...] = ("pca", "tsne", "umap")

N_COMPONENTS = 2

# Distributions whose versions decide each embedder's result; a cached map made with other
# versions is recomputed.
LIBRARIES: dict[str, tuple[str, ...]] = {
    "pca": ("scikit-learn",),
    "tsne": ("openTSNE",),
    "umap": ("umap-learn", "pynndescent", "numba"),
    "trimap": ("trimap", "annoy", "numba"),
}

# Minimum number of points one map is fitted on. At 10 points t-SNE's perplexity is lowered to
# 2, and TriMAP sets each point's distance scale from its 4th to 6th nearest neighbours.
MIN_POINTS = 10

# openTSNE 1.0 default for the number of training neighbours whose median position starts
# each new point in TSNEEmbedding.transform.
_TSNE_TRANSFORM_K = 25

# Constructor arguments that embed() sets itself, with the reason given in the error message.
_RESERVED_PARAMS = {
    "n_components": "is always 2",
    "n_dims": "is always 2",
    "random_state": "comes from the top-level `seed`",
    "verbose": "comes from the top-level `progress`",
}

# Constructor parameters of each library at the versions in pyproject.toml (scikit-learn 1.9,
# openTSNE 1.0, umap-learn 0.5, trimap 1.1.5), less those embed() sets itself. Config
# validation checks keys against these without importing the libraries, and embed() checks
# again against the installed signature.
KNOWN_PARAMS: dict[str, frozenset[str]] = {
    "pca": frozenset(
        ["copy", "whiten", "svd_solver", "tol", "iterated_power", "n_oversamples", "power_iteration_normalizer"]
    ),
    "tsne": frozenset(
        [
            "perplexity", "learning_rate", "early_exaggeration_iter", "early_exaggeration", "n_iter",
            "exaggeration", "dof", "theta", "n_interpolation_points", "min_num_intervals", "ints_in_interval",
            "initialization", "metric", "metric_params", "initial_momentum", "final_momentum", "max_grad_norm",
            "max_step_norm", "n_jobs", "neighbors", "knn_kwargs", "negative_gradient_method", "callbacks",
            "callbacks_every_iters",
        ]
    ),
    "umap": frozenset(
        [
            "n_neighbors", "metric", "metric_kwds", "output_metric", "output_metric_kwds", "n_epochs",
            "learning_rate", "init", "min_dist", "spread", "low_memory", "n_jobs", "set_op_mix_ratio",
            "local_connectivity", "repulsion_strength", "negative_sample_rate", "transform_queue_size", "a", "b",
            "angular_rp_forest", "target_n_neighbors", "target_metric", "target_metric_kwds", "target_weight",
            "transform_seed", "transform_mode", "force_approximation_algorithm", "tqdm_kwds", "unique",
            "densmap", "dens_lambda", "dens_frac", "dens_var_shift", "output_dens", "disconnection_distance",
            "precomputed_knn",
        ]
    ),
    "trimap": frozenset(
        [
            "n_inliers", "n_outliers", "n_random", "distance", "lr", "n_iters", "triplets", "weights",
            "use_dist_matrix", "knn_tuple", "weight_adj", "weight_temp", "apply_pca", "opt_method", "return_seq",
        ]
    ),
}

_TRIMAP_DISTANCES = ("euclidean", "manhattan", "angular", "cosine", "hamming")


@dataclass(frozen=True)
class Embedding:
    """2-D coordinates of the training and test points from one fitted map.

    Attributes
    ----------
    train : np.ndarray of shape (n_train, 2), float32
        Coordinates of the training points.
    test : np.ndarray of shape (n_test, 2), float32
        Coordinates of the test points.
    adjusted : dict of str to (requested, used)
        Library parameters that embed() lowered to fit the number of points, keyed by
        parameter name. Empty when every parameter was used as configured.
    """

    train: np.ndarray
    test: np.ndarray
    adjusted: dict[str, tuple[object, object]] = field(default_factory=dict)


def _is_whole(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _whole_at_least(lowest: int) -> Callable[[object], bool]:
    return lambda value: _is_whole(value) and value >= lowest


def _real_above(lowest: float) -> Callable[[object], bool]:
    return lambda value: _is_real(value) and value > lowest


def _auto_or_real_above(lowest: float) -> Callable[[object], bool]:
    return lambda value: value == "auto" or (_is_real(value) and value > lowest)


# Rule text and check for the parameters whose bad values would otherwise fail late, deep in
# the library, or not at all. Parameters not listed here are checked by the library itself.
_PARAM_RULES: dict[str, dict[str, tuple[str, Callable[[object], bool]]]] = {
    "pca": {
        "whiten": ("must be true or false", lambda value: isinstance(value, bool)),
    },
    "tsne": {
        "perplexity": ("must be > 0", _real_above(0)),
        "learning_rate": ('must be "auto" or > 0', _auto_or_real_above(0)),
        "early_exaggeration": ('must be "auto" or > 0', _auto_or_real_above(0)),
        "n_iter": ("must be a whole number >= 1", _whole_at_least(1)),
        "early_exaggeration_iter": ("must be a whole number >= 0", _whole_at_least(0)),
    },
    "umap": {
        "n_neighbors": ("must be a whole number >= 2", _whole_at_least(2)),
        "min_dist": ("must be >= 0", lambda value: _is_real(value) and value >= 0),
        "spread": ("must be > 0", _real_above(0)),
        "learning_rate": ("must be > 0", _real_above(0)),
        "n_epochs": (
            "must be null or a whole number >= 1",
            lambda value: value is None or _whole_at_least(1)(value),
        ),
    },
    "trimap": {
        "n_inliers": ("must be a whole number >= 1", _whole_at_least(1)),
        "n_outliers": ("must be a whole number >= 1", _whole_at_least(1)),
        "n_random": ("must be a whole number >= 0", _whole_at_least(0)),
        "n_iters": ("must be a whole number >= 1", _whole_at_least(1)),
        "lr": ("must be > 0", _real_above(0)),
        "distance": (
            f"must be one of {', '.join(_TRIMAP_DISTANCES)}",
            lambda value: value in _TRIMAP_DISTANCES,
        ),
    },
}


def _as_dict(embedder_cfg: Mapping) -> dict:
    if isinstance(embedder_cfg, DictConfig):
        return OmegaConf.to_container(embedder_cfg, resolve=True)
    return dict(embedder_cfg)


def _library_params(config: Mapping) -> dict:
    return {key: value for key, value in config.items() if key not in ("name", "protocol")}


def validate_embedder_config(embedder_cfg: Mapping) -> None:
    """Raise ConfigError unless the embedder config is usable, importing no embedding library.

    Checks that ``name`` is one of `EMBEDDERS`, that ``protocol`` is one of `PROTOCOLS` and
    that the embedder supports it, that no key sets what embed() sets itself
    (``n_components``, ``n_dims``, ``random_state``, ``verbose``), and the range of the
    parameters listed in ``_PARAM_RULES``. Every message names the config key, the rule and
    the value received.

    Parameters
    ----------
    embedder_cfg : Mapping
        The ``embedder`` config group: ``name``, ``protocol`` and the library's parameters.

    Raises
    ------
    ConfigError
        On the first rule that the config breaks.

    Notes
    -----
    Keys that the library's constructor does not accept are found only by embed(), after
    it imports the library, because the accepted names depend on the installed version.
    """
    config = _as_dict(embedder_cfg)
    name = config.get("name")
    if name not in EMBEDDERS:
        raise ConfigError(
            f"embedder must be one of {', '.join(EMBEDDERS)}; got {name!r}. "
            "Choose one with e.g. `embedder=umap`."
        )
    protocol = config.get("protocol")
    if protocol not in PROTOCOLS:
        raise ConfigError(
            f"embedder.protocol must be one of {', '.join(PROTOCOLS)}; got {protocol!r}. "
            "Set e.g. `embedder.protocol=transductive`."
        )
    if protocol == "inductive" and name not in INDUCTIVE_EMBEDDERS:
        raise ConfigError(
            f"embedder.protocol must be transductive for {name}; got 'inductive'. "
            "TriMAP has no out-of-sample method to place test points in a fitted map. "
            "Set `embedder.protocol=transductive`, or choose an embedder that has one: "
            f"{', '.join(INDUCTIVE_EMBEDDERS)}."
        )

    params = _library_params(config)
    for key, reason in _RESERVED_PARAMS.items():
        if key in params:
            raise ConfigError(
                f"embedder.{key} cannot be set because it {reason}; got {params[key]!r}. "
                f"Remove embedder.{key} from the config."
            )
    unknown = sorted(set(params) - KNOWN_PARAMS[name] - set(_RESERVED_PARAMS))
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(KNOWN_PARAMS[name]), n=1)
        hint = f" Did you mean embedder.{close[0]}={params[unknown[0]]!r} (without +)?" if close else ""
        raise ConfigError(
            f"embedder.{unknown[0]} is not a parameter of embedder={name}; got {params[unknown[0]]!r}.{hint} "
            f"Otherwise remove it, or use one of: {', '.join(sorted(KNOWN_PARAMS[name]))}."
        )
    for key, (rule, is_valid) in _PARAM_RULES[name].items():
        if key in params and not is_valid(params[key]):
            default = _configured_default(name, key)
            example = f"Set e.g. embedder.{key}={default}, the value in conf/embedder/{name}.yaml." if default else (
                f"Choose a value that follows the rule, or drop the override to use conf/embedder/{name}.yaml."
            )
            raise ConfigError(f"embedder.{key} {rule}; got {params[key]!r}. {example}")
    if name == "umap":
        _check_min_dist(params)


def _configured_default(name: str, key: str) -> str | None:
    """Return the value of ``key`` in conf/embedder/<name>.yaml as text, or None."""
    path = PROJECT_ROOT / "conf" / "embedder" / f"{name}.yaml"
    if not path.is_file():
        return None
    value = OmegaConf.load(path).get(key)
    return None if value is None else str(value)


def _check_min_dist(params: Mapping) -> None:
    # umap-learn 0.5 raises on min_dist > spread only when fitting, which comes after training.
    spread = params.get("spread", 1.0)
    min_dist = params.get("min_dist", 0.1)
    if min_dist > spread:
        raise ConfigError(
            f"embedder.min_dist must be <= embedder.spread ({spread!r}); got {min_dist!r}"
        )


def _check_seed(seed: object) -> None:
    # numba's np.random.seed (used for TriMAP) and scikit-learn both take seeds in [0, 2**32).
    if not _is_whole(seed) or not 0 <= seed < 2**32:
        raise ConfigError(f"seed must be a whole number in [0, 2**32); got {seed!r}")


def _as_points(X: object, name: str) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise DataError(f"{name} must be a 2-D array (n_samples, n_features); got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float64)
    if not np.isfinite(X).all():
        raise DataError(
            f"{name} contains NaN or infinite values; activations like these usually come "
            "from a training run that diverged."
        )
    return X


def _check_points(name: str, protocol: str, X_train: np.ndarray, X_test: np.ndarray) -> None:
    if X_train.shape[1] != X_test.shape[1]:
        raise DataError(
            f"X_train and X_test must have the same number of features; got "
            f"{X_train.shape[1]} and {X_test.shape[1]}"
        )
    if name == "pca" and X_train.shape[1] < N_COMPONENTS:
        raise DataError(f"PCA needs at least 2 features for 2 components; got {X_train.shape[1]}")
    n_fitted = len(X_train) + len(X_test) if protocol == "transductive" else len(X_train)
    if n_fitted < MIN_POINTS:
        fitted_on = "training and test" if protocol == "transductive" else "training"
        raise DataError(
            f"{name} needs at least {MIN_POINTS} points to fit a map; got {n_fitted} "
            f"{fitted_on} points under the {protocol} protocol. "
            "Use more points (data.n_train, data.n_test)."
        )


def embed(
    X_train: np.ndarray,
    X_test: np.ndarray,
    embedder_cfg: Mapping,
    seed: int,
    progress: bool = False,
) -> Embedding:
    """Fit one 2-D map and return the coordinates of the training and test points.

    Parameters
    ----------
    X_train : array-like of shape (n_train, n_features)
        Training points, e.g. one layer's activations.
    X_test : array-like of shape (n_test, n_features)
        Test points in the same space.
    embedder_cfg : Mapping
        ``name`` (one of `EMBEDDERS`), ``protocol`` (one of `PROTOCOLS`) and keyword
        arguments for the library's constructor, e.g. ``perplexity`` for openTSNE.
    seed : int
        ``random_state`` of every embedder. For TriMAP, which has none, the seed of numba's
        random generator.
    progress : bool, default=False
        Pass ``verbose=True`` to openTSNE, UMAP and TriMAP, which then print their progress
        to standard output. PCA prints nothing either way.

    Returns
    -------
    Embedding
        ``train`` of shape (n_train, 2) and ``test`` of shape (n_test, 2), float32 and
        finite, and the parameters lowered to fit the number of points.

    Raises
    ------
    ConfigError
        If the config breaks a rule of validate_embedder_config(), contains a key that the
        library's constructor does not accept, or ``seed`` is invalid.
    DataError
        If the arrays are not 2-D with the same number of features, are not finite, or
        hold fewer than `MIN_POINTS` points to fit.
    """
    validate_embedder_config(embedder_cfg)
    _check_seed(seed)
    config = _as_dict(embedder_cfg)
    name, protocol = config["name"], config["protocol"]
    X_train = _as_points(X_train, "X_train")
    X_test = _as_points(X_test, "X_test")
    _check_points(name, protocol, X_train, X_test)
    transductive = protocol == "transductive"
    X_fit = np.vstack([X_train, X_test]) if transductive else X_train

    estimator = _import_estimator(name)
    params = _library_params(config)
    _check_accepted(name, estimator, params)
    params, adjusted = _fit_params_to_size(name, estimator, params, len(X_fit))

    logger.info(
        "Embedding with %s, %s protocol: fitting %d points (%d train, %d test)",
        name, protocol, len(X_fit), len(X_train), len(X_test),
    )
    start = time.perf_counter()
    X_new = X_test if not transductive and len(X_test) > 0 else None
    fitted, placed = _RUNNERS[name](estimator, X_fit, X_new, params, seed, progress)
    if transductive:
        train, test = fitted[: len(X_train)], fitted[len(X_train):]
    else:
        train = fitted
        test = placed if placed is not None else np.empty((0, N_COMPONENTS))
    seconds = time.perf_counter() - start
    logger.info("Embedded with %s, %s protocol, in %.1f s", name, protocol, seconds)

    return Embedding(
        train=_as_coordinates(train, name, "training"),
        test=_as_coordinates(test, name, "test"),
        adjusted=adjusted,
    )


def _as_coordinates(coordinates: object, name: str, part: str) -> np.ndarray:
    coordinates = np.ascontiguousarray(coordinates, dtype=np.float32)
    if not np.isfinite(coordinates).all():
        raise RuntimeError(f"{name} returned NaN or infinite coordinates for the {part} points")
    return coordinates


def _import_estimator(name: str) -> type:
    """Import the estimator class of one embedder (seconds for umap and trimap)."""
    if name == "pca":
        from sklearn.decomposition import PCA

        return PCA
    if name == "tsne":
        from openTSNE import TSNE

        return TSNE
    if name == "umap":
        return _import_umap_class()
    from trimap import TRIMAP

    return TRIMAP


def _import_umap_class() -> type:
    """Import umap-learn's UMAP class without importing TensorFlow.

    In umap-learn 0.5, ``umap/__init__.py`` imports ``umap.parametric_umap``, which imports
    TensorFlow. That was about 3.5 s of the 5.5 to 6.3 s that ``import umap`` took on a
    2-CPU machine (umap-learn 0.5.12, tensorflow-cpu 2.21). A ``None`` entry in
    ``sys.modules`` makes ``import tensorflow`` raise ImportError, which umap-learn handles
    by defining a ParametricUMAP stub that raises when used. The entry is removed right
    after, so a later ``import tensorflow`` works as usual.

    When TensorFlow is already loaded (after Keras training), umap is imported as usual.
    """
    if "tensorflow" in sys.modules or "umap" in sys.modules:
        from umap.umap_ import UMAP

        return UMAP
    sys.modules["tensorflow"] = None
    try:
        from umap.umap_ import UMAP
    finally:
        del sys.modules["tensorflow"]
    return UMAP


def _check_accepted(name: str, estimator: type, params: Mapping) -> None:
    accepted = set(inspect.signature(estimator).parameters) - set(_RESERVED_PARAMS)
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise ConfigError(
            f"embedder.{unknown[0]} is not a parameter of {estimator.__module__}."
            f"{estimator.__qualname__}, which embedder={name} uses; got {params[unknown[0]]!r}. "
            f"Remove it, or use one of: {', '.join(sorted(accepted))}."
        )


def _fit_params_to_size(
    name: str, estimator: type, params: Mapping, n_points: int
) -> tuple[dict, dict[str, tuple[object, object]]]:
    """Lower the parameters that cannot exceed a bound set by the number of fitted points.

    Returns the parameters to use and ``{key: (requested, used)}`` for those it lowered, and
    logs a WARNING for each. A key missing from ``params`` means the library default.
    """
    defaults = {
        key: parameter.default
        for key, parameter in inspect.signature(estimator).parameters.items()
    }
    params = dict(params)
    adjusted = {}
    for key, largest, rule in _size_bounds(name, {**defaults, **params}, n_points):
        requested = params.get(key, defaults[key])
        if requested > largest:
            params[key] = largest
            adjusted[key] = (requested, largest)
            logger.warning(
                "embedder.%s=%s is too large for %d points (%s); using %s",
                key, requested, n_points, rule, largest,
            )
    return params, adjusted


def _size_bounds(name: str, values: Mapping, n_points: int) -> list[tuple[str, int, str]]:
    """List ``(key, largest value, rule)`` for the parameters bounded by the number of points."""
    if name == "tsne":
        # openTSNE 1.0 uses min(n_points - 1, 3 * perplexity) neighbours. When these are fewer
        # than the perplexity requires, it lowers the perplexity itself with its own warning.
        return [("perplexity", (n_points - 2) // 3, "t-SNE needs 3 * perplexity < n_points - 1")]
    if name == "umap":
        return [("n_neighbors", n_points - 1, "UMAP needs n_neighbors < n_points")]
    if name == "trimap":
        # trimap 1.1.5 draws n_outliers distinct points outside each point's n_inliers + 1
        # nearest neighbours by rejection sampling, which loops forever when too few remain.
        n_outliers = min(values["n_outliers"], n_points - 2)
        rule = "TriMAP needs n_inliers + n_outliers < n_points"
        return [
            ("n_outliers", n_points - 2, rule),
            ("n_inliers", n_points - 1 - n_outliers, rule),
        ]
    return []


def _run_pca(estimator, X_fit, X_new, params, seed, progress):
    # PCA has no progress output, so `progress` is unused.
    model = estimator(n_components=N_COMPONENTS, random_state=seed, **params)
    return _fit_and_place(model, X_fit, X_new)


def _run_tsne(estimator, X_fit, X_new, params, seed, progress):
    tsne = estimator(n_components=N_COMPONENTS, random_state=seed, verbose=progress, **params)
    placed = None
    # openTSNE 1.0 logs INFO lines, such as the gradient method it picked, even when
    # verbose=False.
    with _logger_at_warning("openTSNE", enabled=not progress):
        embedding = tsne.fit(X_fit)
        if X_new is not None:
            placed = embedding.transform(X_new, k=min(_TSNE_TRANSFORM_K, len(X_fit)))
    return np.asarray(embedding), placed


@contextlib.contextmanager
def _logger_at_warning(name: str, enabled: bool) -> Iterator[None]:
    """Drop a library logger's records below WARNING inside the block when enabled."""
    library_logger = logging.getLogger(name)
    level = library_logger.level
    if enabled:
        library_logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        library_logger.setLevel(level)


def _run_umap(estimator, X_fit, X_new, params, seed, progress):
    model = estimator(n_components=N_COMPONENTS, random_state=seed, verbose=progress, **params)
    return _fit_and_place(model, X_fit, X_new)


def _run_trimap(estimator, X_fit, X_new, params, seed, progress):
    """Fit TriMAP reproducibly: one numba thread, numba's generator seeded with `seed`.

    trimap 1.1.5 has no random_state and samples triplets with ``np.random`` inside numba
    ``prange`` loops. Each numba worker thread has its own generator, which a seed set from
    the calling thread does not reach, so with several threads every fit differs.
    """
    import numba

    model = estimator(n_dims=N_COMPONENTS, verbose=progress, **params)
    n_threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        _numba_seeder()(seed)
        fitted = model.fit_transform(X_fit)
    finally:
        numba.set_num_threads(n_threads)
    return fitted, None


@functools.cache
def _numba_seeder() -> Callable[[int], None]:
    """Compile, once per process, a function that seeds numba's generator of the calling thread."""
    import numba

    @numba.njit
    def seed_numba_random(seed):
        np.random.seed(seed)

    return seed_numba_random


def _fit_and_place(model, X_fit, X_new):
    fitted = model.fit_transform(X_fit)
    placed = None if X_new is None else model.transform(X_new)
    return fitted, placed


_RUNNERS = {"pca": _run_pca, "tsne": _run_tsne, "umap": _run_umap, "trimap": _run_trimap}
