"""Score how well a 2-D map keeps the structure of a layer's activations, beside kNN accuracy.

Local structure: trustworthiness and continuity (Venna and Kaski). Global structure: random
triplet accuracy and the Spearman correlation of pairwise distances. Class separation in the
map: the silhouette of the labels. All of them run on one fixed, stratified subsample of the
training and test points stacked. The linear probe scores the layer itself, not a map.
"""

from __future__ import annotations

import logging
import numbers
import time
import warnings
from collections.abc import Mapping

import numpy as np
from scipy.stats import spearmanr
from sklearn import config_context
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import pairwise_distances_chunked, silhouette_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from src.errors import ConfigError

logger = logging.getLogger(__name__)

# Defaults of the ``quality`` config section. The metrics cost O(n_points**2) time, and 5,000
# points take seconds per map. Triplet and pair samples of 100,000 give a standard error of at
# most 0.5 / sqrt(100_000) = 0.0016 for the triplet accuracy and about 0.003 for the Spearman
# correlation, well below the differences between embedders worth reporting.
QUALITY_DEFAULTS = {
    "enabled": True,
    "k": 10,
    "n_points": 5000,
    "n_triplets": 100_000,
    "n_pairs": 100_000,
    "probe": True,
}

# Distance rows per chunk are sized so that one chunk of float64 distances takes this many MiB.
# The neighbour search keeps a few chunk-sized arrays at once, so its extra memory does not grow
# with the number of points: benchmarks/quality_memory.py measured about 290 MiB for 7,000 to
# 20,000 points.
WORKING_MEMORY_MB = 128

# Triplets and pairs are measured in batches of this many, so the gathered rows stay small.
_BATCH_SIZE = 10_000


def stratified_subsample(y: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Draw a fixed, stratified random subsample: indices of ``n`` points, sorted.

    Each class gets its share of ``n`` rounded down, and the points left over go to the
    classes with the largest remainders (the earlier class on a tie). So every class count
    is within 1 of ``n`` times the class's share of ``y``.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels.
    n : int
        Number of points to keep. If ``n >= n_samples``, every index is returned.
    seed : int, default=0
        Seed of the random choice within each class.

    Returns
    -------
    ndarray of int of shape (min(n, n_samples),)
        Indices into ``y``, in increasing order.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be a 1-D array of labels; got shape {y.shape}")
    if not _is_whole(n) or n < 1:
        raise ValueError(f"n must be a whole number >= 1; got {n!r}")
    if n >= len(y):
        return np.arange(len(y))

    _, class_of, counts = np.unique(y, return_inverse=True, return_counts=True)
    # Integer arithmetic, so that a share that is a whole number is never rounded the wrong way.
    quota, remainder = np.divmod(counts * n, len(y))
    n_left = n - quota.sum()
    quota[np.argsort(-remainder, kind="stable")[:n_left]] += 1

    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(class_of == label), size=size, replace=False)
        for label, size in enumerate(quota)
    ]
    return np.sort(np.concatenate(chosen))


def trustworthiness_continuity(
    X_high: np.ndarray,
    X_low: np.ndarray,
    k: int = 10,
    *,
    working_memory: float = WORKING_MEMORY_MB,
) -> tuple[float, float]:
    r"""Compute the trustworthiness and the continuity of a map, with Euclidean distances.

    With :math:`r(i, j)` the rank of point j among the neighbours of point i in the high
    space (the nearest is 1) and :math:`U_i^k` the k nearest neighbours of i in the map,

    .. math::

        T(k) = 1 - \frac{2}{nk(2n - 3k - 1)} \sum_{i=1}^{n} \sum_{j \in U_i^k} \max(0, r(i, j) - k)

    Trustworthiness penalises map neighbours that are far apart in the high space.
    Continuity is the same sum with the two spaces swapped: it penalises high-space
    neighbours that the map pulls apart. Both lie in [0, 1]. 1 means the k-neighbourhoods
    agree exactly, and a map unrelated to the data scores about 0.5.

    Distances are computed in row chunks of about ``working_memory`` MiB, never as an
    n x n matrix.

    Parameters
    ----------
    X_high : array-like of shape (n_samples, n_features)
        Points in the original space, e.g. a layer's activations.
    X_low : array-like of shape (n_samples, n_components)
        The same points in the map.
    k : int, default=10
        Neighbourhood size, in [1, n_samples / 2).
    working_memory : float, default=WORKING_MEMORY_MB
        MiB of float64 distances per chunk. The peak extra memory is an estimated two to four
        times this, plus a float64 copy of both inputs.

    Returns
    -------
    trustworthiness : float
    continuity : float

    Raises
    ------
    ValueError
        If the shapes do not match, a value is not finite, or ``k`` is out of range.

    Notes
    -----
    Each point is excluded from its own neighbours. Ties are handled so that the result does
    not depend on the order of the points. The rank :math:`r(i, j)` is 1 plus the number of
    points strictly nearer to i than j, so points at the same distance share a rank. A
    neighbour set :math:`U_i^k` with a tie at the k-th distance takes the points with the
    smaller index. On data without tied distances, trustworthiness equals
    ``sklearn.manifold.trustworthiness(X_high, X_low, n_neighbors=k)``. That function breaks
    ties in whatever order ``argsort`` returns, so with ties the two can differ.

    Time is O(n_samples**2 * k). On two CPU cores, 5,000 points of 256 features took about
    2 s and 20,000 points of 64 features about 33 s, so callers score a subsample (see
    map_quality).
    """
    X_high, X_low = _check_paired(X_high, X_low)
    n = len(X_high)
    if not _is_whole(k) or not 1 <= k < n / 2:
        raise ValueError(
            f"k must be a whole number in [1, n_samples / 2) for trustworthiness and continuity "
            f"to lie in [0, 1]; got k={k!r} with n_samples={n}. Lower k or score more points."
        )
    # Centring changes no distance, but it keeps the dot-product form of the distance
    # accurate for points far from the origin.
    X_high = X_high - X_high.mean(axis=0)
    X_low = X_low - X_low.mean(axis=0)

    low_neighbors, _ = _scan_neighbors(X_low, k, find_nearest=True, ranked=None, working_memory=working_memory)
    high_neighbors, trust_penalty = _scan_neighbors(
        X_high, k, find_nearest=True, ranked=low_neighbors, working_memory=working_memory
    )
    _, continuity_penalty = _scan_neighbors(
        X_low, k, find_nearest=False, ranked=high_neighbors, working_memory=working_memory
    )

    scale = 2.0 / (n * k * (2.0 * n - 3.0 * k - 1.0))
    return 1.0 - scale * trust_penalty, 1.0 - scale * continuity_penalty


def _scan_neighbors(
    X: np.ndarray,
    k: int,
    *,
    find_nearest: bool,
    ranked: np.ndarray | None,
    working_memory: float,
) -> tuple[np.ndarray | None, float]:
    """Pass once over the distances within X, a chunk of rows at a time.

    Returns the k nearest neighbours of every point (if ``find_nearest``), shape (n, k), and
    the sum of max(0, rank - k) over the neighbour lists in ``ranked`` (0 if it is None).
    """

    def reduce_chunk(distances: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
        rows = np.arange(len(distances))
        distances[rows, start + rows] = np.inf
        nearest = _nearest_columns(distances, k) if find_nearest else np.empty((len(rows), 0), dtype=np.intp)
        if ranked is None:
            penalty = np.zeros(len(rows))
        else:
            penalty = _rank_penalties(distances, ranked[start : start + len(rows)], k)
        return nearest, penalty

    nearest_parts, penalty_parts = [], []
    for nearest, penalty in pairwise_distances_chunked(
        X, reduce_func=reduce_chunk, metric="euclidean", working_memory=working_memory
    ):
        nearest_parts.append(nearest)
        penalty_parts.append(penalty)
    neighbors = np.concatenate(nearest_parts) if find_nearest else None
    return neighbors, float(np.sum(np.concatenate(penalty_parts)))


def _nearest_columns(distances: np.ndarray, k: int) -> np.ndarray:
    """Select the k smallest entries of each row: their columns, in increasing column order.

    Of entries tied at the k-th smallest value, those in the leftmost columns are kept.
    """
    kth = np.partition(distances, k - 1, axis=1)[:, k - 1 : k]
    keep = distances <= kth
    # Rows where more than k entries are at most the k-th value have ties at that value.
    # Only those rows need the slower rule that keeps the leftmost tied columns.
    for row in np.flatnonzero(np.count_nonzero(keep, axis=1) > k):
        tied = distances[row] == kth[row]
        n_tied_kept = k - np.count_nonzero(distances[row] < kth[row])
        keep[row] &= ~tied | (np.cumsum(tied) <= n_tied_kept)
    return np.nonzero(keep)[1].reshape(len(distances), k)


def _rank_penalties(distances: np.ndarray, neighbors: np.ndarray, k: int) -> np.ndarray:
    """Sum max(0, rank - k) per row, where a neighbour's rank is 1 + the count of strictly nearer points."""
    thresholds = np.take_along_axis(distances, neighbors, axis=1)
    penalties = np.zeros(len(distances))
    for column in range(neighbors.shape[1]):
        ranks = 1 + np.count_nonzero(distances < thresholds[:, column : column + 1], axis=1)
        penalties += np.maximum(ranks - k, 0)
    return penalties


def triplet_accuracy(
    X_high: np.ndarray, X_low: np.ndarray, n_triplets: int = 100_000, seed: int = 0
) -> float:
    """Measure the share of random triplets whose distance order the map keeps.

    A triplet (i, j, l) of distinct points is kept when d(i, j) < d(i, l) is true in the map
    exactly when it is true in the high space. A triplet whose two distances tie in one space
    counts as kept only if they also tie in the other. Because the triplets are drawn
    uniformly, most compare far-apart points, so this scores global structure.

    Parameters
    ----------
    X_high : array-like of shape (n_samples, n_features)
        Points in the original space.
    X_low : array-like of shape (n_samples, n_components)
        The same points in the map.
    n_triplets : int, default=100_000
        Number of triplets drawn, with replacement. The standard error of the result is at
        most 0.5 / sqrt(n_triplets).
    seed : int, default=0
        Seed of the triplet draw, so every map of the same points gets the same triplets.

    Returns
    -------
    float
        Share in [0, 1]. A map unrelated to the data scores about 0.5.
    """
    X_high, X_low = _check_paired(X_high, X_low)
    if len(X_high) < 3:
        raise ValueError(f"triplet_accuracy needs at least 3 points; got {len(X_high)}")
    if not _is_whole(n_triplets) or n_triplets < 1:
        raise ValueError(f"n_triplets must be a whole number >= 1; got {n_triplets!r}")

    anchor, near, far = _draw_triplets(len(X_high), n_triplets, np.random.default_rng(seed))
    n_kept = 0
    for batch in _batches(n_triplets):
        a, b, c = anchor[batch], near[batch], far[batch]
        order_high = np.sign(_squared_distances(X_high, a, b) - _squared_distances(X_high, a, c))
        order_low = np.sign(_squared_distances(X_low, a, b) - _squared_distances(X_low, a, c))
        n_kept += int(np.count_nonzero(order_high == order_low))
    return n_kept / n_triplets


def _draw_triplets(n: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``size`` triplets of distinct indices in [0, n), each uniform over such triplets."""
    first = rng.integers(n, size=size)
    # Draw from one value fewer and shift past the excluded index, so no draw is rejected.
    second = rng.integers(n - 1, size=size)
    second += second >= first
    third = rng.integers(n - 2, size=size)
    third += third >= np.minimum(first, second)
    third += third >= np.maximum(first, second)
    return first, second, third


def distance_spearman(
    X_high: np.ndarray, X_low: np.ndarray, n_pairs: int = 100_000, seed: int = 0
) -> float:
    """Compute the Spearman correlation of pairwise distances in the two spaces.

    This is the rank correlation of a Shepard diagram: the distances of a random sample of
    point pairs in the high space against the same pairs' distances in the map.

    Parameters
    ----------
    X_high : array-like of shape (n_samples, n_features)
        Points in the original space.
    X_low : array-like of shape (n_samples, n_components)
        The same points in the map.
    n_pairs : int, default=100_000
        Number of pairs of distinct points drawn, with replacement. The standard error of
        the result is about 1 / sqrt(n_pairs) for weakly correlated distances.
    seed : int, default=0
        Seed of the pair draw.

    Returns
    -------
    float
        Correlation in [-1, 1]. A map unrelated to the data scores about 0. NaN if the
        distances in either space are all equal, e.g. a map with every point at one place.
    """
    X_high, X_low = _check_paired(X_high, X_low)
    if len(X_high) < 2:
        raise ValueError(f"distance_spearman needs at least 2 points; got {len(X_high)}")
    if not _is_whole(n_pairs) or n_pairs < 2:
        raise ValueError(f"n_pairs must be a whole number >= 2; got {n_pairs!r}")

    rng = np.random.default_rng(seed)
    first = rng.integers(len(X_high), size=n_pairs)
    second = rng.integers(len(X_high) - 1, size=n_pairs)
    second += second >= first
    # Squared distances have the same ranks as distances, so the correlation is the same.
    high = np.concatenate([_squared_distances(X_high, first[b], second[b]) for b in _batches(n_pairs)])
    low = np.concatenate([_squared_distances(X_low, first[b], second[b]) for b in _batches(n_pairs)])
    for name, values in (("X_high", high), ("X_low", low)):
        if np.ptp(values) == 0:
            logger.warning(
                "distance_spearman is NaN: all %d sampled distances in %s are equal.", n_pairs, name
            )
            return float("nan")
    return float(spearmanr(high, low).statistic)


def silhouette_2d(
    X_low: np.ndarray, y: np.ndarray, sample_size: int | None = None, seed: int = 0
) -> float:
    """Compute the silhouette of the labels in the map, with Euclidean distances.

    Parameters
    ----------
    X_low : array-like of shape (n_samples, n_components)
        The map.
    y : array-like of shape (n_samples,)
        Labels of the points.
    sample_size : int or None, default=None
        Score a random subset of this many points, or all of them if None. Time grows with
        the square of the points scored. Distances are computed in chunks of
        ``WORKING_MEMORY_MB``, so memory does not.
    seed : int, default=0
        Seed of the subset draw.

    Returns
    -------
    float
        Silhouette in [-1, 1]: near 1 for tight, well-separated classes, near 0 for classes
        mixed at random. NaN, with a warning, unless there are 2 to n_samples - 1 labels.
    """
    X_low = _as_points(X_low, "X_low")
    y = np.asarray(y)
    if y.shape != (len(X_low),):
        raise ValueError(f"y must have one label per row of X_low; got shape {y.shape} for X_low of shape {X_low.shape}")
    n_labels = len(np.unique(y))
    if not 2 <= n_labels <= len(y) - 1:
        logger.warning(
            "silhouette is NaN: it needs 2 to n_samples - 1 labels; got %d labels for %d points.",
            n_labels,
            len(y),
        )
        return float("nan")
    # silhouette_score computes distances in chunks of scikit-learn's working_memory, 1 GiB by default.
    with config_context(working_memory=WORKING_MEMORY_MB):
        score = silhouette_score(X_low, y, metric="euclidean", sample_size=sample_size, random_state=seed)
    return float(score)


def linear_probe_accuracy(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    seed: int = 0,
    max_iter: int = 500,
) -> float:
    """Return the test accuracy of a logistic regression trained on a layer's activations.

    The probe measures how linearly separable the classes are in the layer itself, so it
    depends on the layer and not on any map of it. Features are standardised with the
    training mean and variance first, which lets the L-BFGS solver converge in few steps.

    Parameters
    ----------
    X_train : array-like of shape (n_train, n_features)
        Training activations.
    y_train : array-like of shape (n_train,)
        Training labels, at least two classes.
    X_test : array-like of shape (n_test, n_features)
        Test activations.
    y_test : array-like of shape (n_test,)
        Test labels.
    seed : int, default=0
        ``random_state`` of the LogisticRegression. The L-BFGS solver used here is
        deterministic, so the result does not change with it in scikit-learn 1.9.
    max_iter : int, default=500
        Maximum solver iterations. If the solver stops here before converging, a WARNING
        is logged and the accuracy may be slightly low.

    Returns
    -------
    float
        Accuracy in [0, 1].
    """
    X_train, X_test = _as_points(X_train, "X_train"), _as_points(X_test, "X_test")
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=seed))
    with warnings.catch_warnings():
        # Reported below as one log line instead.
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        probe.fit(X_train, np.asarray(y_train))
    n_iterations = int(np.max(probe[-1].n_iter_))
    if n_iterations >= max_iter:
        logger.warning(
            "The linear probe stopped at max_iter=%d before converging; its accuracy may be "
            "slightly low. Raise max_iter if this repeats.",
            max_iter,
        )
    return float(probe.score(X_test, np.asarray(y_test)))


def map_quality(
    X_train_high: np.ndarray,
    X_test_high: np.ndarray,
    y_train: np.ndarray,
    y_test: np.ndarray,
    map_train: np.ndarray,
    map_test: np.ndarray,
    *,
    k: int = QUALITY_DEFAULTS["k"],
    n_points: int = QUALITY_DEFAULTS["n_points"],
    n_triplets: int = QUALITY_DEFAULTS["n_triplets"],
    n_pairs: int = QUALITY_DEFAULTS["n_pairs"],
    seed: int = 0,
) -> dict[str, float]:
    """Score a map of one layer on one stratified subsample of the training and test points.

    The training and test points are stacked, and ``n_points`` of them are drawn stratified
    by label with ``seed``. Every metric scores those same points, and the same seed gives the
    same points, triplets and pairs for every map of the layer.

    Parameters
    ----------
    X_train_high, X_test_high : array-like of shape (n_train, n_features) and (n_test, n_features)
        The layer's activations.
    y_train, y_test : array-like of shape (n_train,) and (n_test,)
        Labels.
    map_train, map_test : array-like of shape (n_train, n_components) and (n_test, n_components)
        The map of the same points.
    k : int, default=10
        Neighbourhood size of trustworthiness and continuity, below half the points scored.
    n_points : int, default=5000
        Points scored. Time grows with its square: see trustworthiness_continuity().
    n_triplets : int, default=100_000
        Triplets drawn for triplet_accuracy().
    n_pairs : int, default=100_000
        Pairs drawn for distance_spearman().
    seed : int, default=0
        Seed of the subsample and of the triplet and pair draws.

    Returns
    -------
    dict of str to float
        ``trustworthiness``, ``continuity``, ``triplet_acc``, ``distance_spearman`` and
        ``silhouette``.
    """
    started = time.perf_counter()
    y = np.concatenate([np.asarray(y_train), np.asarray(y_test)])
    _check_split_shapes(
        {"X_train_high": X_train_high, "X_test_high": X_test_high, "map_train": map_train, "map_test": map_test},
        n_train=len(y_train),
        n_test=len(y_test),
    )

    subsample_seed, triplet_seed, pair_seed = np.random.SeedSequence(seed).generate_state(3)
    chosen = stratified_subsample(y, n_points, seed=int(subsample_seed))
    # Gather the chosen rows from each part, so the full stack is never copied.
    X_high = _as_points(_gather(X_train_high, X_test_high, chosen), "activations")
    X_low = _as_points(_gather(map_train, map_test, chosen), "map")
    y = y[chosen]

    trustworthiness, continuity = trustworthiness_continuity(X_high, X_low, k)
    scores = {
        "trustworthiness": trustworthiness,
        "continuity": continuity,
        "triplet_acc": triplet_accuracy(X_high, X_low, n_triplets, seed=int(triplet_seed)),
        "distance_spearman": distance_spearman(X_high, X_low, n_pairs, seed=int(pair_seed)),
        "silhouette": silhouette_2d(X_low, y),
    }
    logger.debug(
        "Scored map quality on %d of %d points in %.1f s", len(chosen), len(X_train_high) + len(X_test_high),
        time.perf_counter() - started,
    )
    return scores


def knn_retention(knn_2d: float, knn_full: float) -> float:
    """Return the map's kNN accuracy as a share of the layer's own kNN accuracy.

    Parameters
    ----------
    knn_2d : float
        kNN accuracy in the map.
    knn_full : float
        kNN accuracy in the layer's activations, with the same k.

    Returns
    -------
    float
        ``knn_2d / knn_full``, usually in [0, 1] but above 1 when the map classifies better.
        NaN when ``knn_full`` is 0, where the ratio is undefined.
    """
    if knn_full == 0:
        return float("nan")
    return float(knn_2d) / float(knn_full)


def validate_quality_config(quality_cfg: Mapping, n_available: int | None = None) -> dict:
    """Check the ``quality`` config section and return it with defaults for missing keys.

    Parameters
    ----------
    quality_cfg : Mapping
        The section: ``enabled``, ``k``, ``n_points``, ``n_triplets``, ``n_pairs``, ``probe``.
        A missing key takes its value from ``QUALITY_DEFAULTS``.
    n_available : int or None, default=None
        Training plus test points, when known. Then ``k`` must also be below half the points
        actually scored, min(n_points, n_available). None skips that check.

    Returns
    -------
    dict
        Every key of ``QUALITY_DEFAULTS``, with the configured value where there is one.

    Raises
    ------
    ConfigError
        On the first broken rule, naming the key, the rule, the value received and the fix.
    """
    unknown = sorted(set(quality_cfg) - set(QUALITY_DEFAULTS))
    if unknown:
        raise ConfigError(
            f"quality.{unknown[0]} is not a config key; got quality.{unknown[0]}={quality_cfg[unknown[0]]!r}. "
            f"Known keys of quality: {', '.join(QUALITY_DEFAULTS)}."
        )
    settings = {**QUALITY_DEFAULTS, **quality_cfg}
    for key in ("enabled", "probe"):
        if not isinstance(settings[key], bool):
            raise ConfigError(
                f"quality.{key} must be true or false; got {settings[key]!r}. Set quality.{key}=true or quality.{key}=false."
            )
    for key, lowest in (("k", 1), ("n_points", 3), ("n_triplets", 1), ("n_pairs", 2)):
        value = settings[key]
        if not _is_whole(value) or value < lowest:
            raise ConfigError(
                f"quality.{key} must be a whole number >= {lowest}; got {value!r}. "
                f"Set e.g. quality.{key}={QUALITY_DEFAULTS[key]}."
            )
    _check_k_below_half(settings, n_available)
    return settings


def _check_k_below_half(settings: Mapping, n_available: int | None) -> None:
    k, n_points = settings["k"], settings["n_points"]
    if k >= n_points / 2:
        raise ConfigError(
            f"quality.k must be less than quality.n_points / 2, so that trustworthiness and "
            f"continuity lie in [0, 1]; got k={k} with n_points={n_points}. "
            "Lower quality.k or raise quality.n_points."
        )
    if n_available is not None and k >= min(n_points, n_available) / 2:
        raise ConfigError(
            f"quality.k must be less than half the points scored; got k={k} with "
            f"{min(n_points, n_available)} points scored ({n_available} training and test points, "
            f"quality.n_points={n_points}). Lower quality.k or use more data."
        )


def _is_whole(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _as_points(X: object, name: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or len(X) == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (n_samples, n_features); got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} must contain only finite values; it contains NaN or infinity")
    return X


def _check_paired(X_high: object, X_low: object) -> tuple[np.ndarray, np.ndarray]:
    X_high, X_low = _as_points(X_high, "X_high"), _as_points(X_low, "X_low")
    if len(X_high) != len(X_low):
        raise ValueError(
            f"X_high and X_low must have the same number of points; got shapes {X_high.shape} and {X_low.shape}"
        )
    return X_high, X_low


def _check_split_shapes(arrays: Mapping[str, object], n_train: int, n_test: int) -> None:
    """Check that the training and test arrays are 2-D with one row per label, and columns that match."""
    shapes = {name: np.shape(array) for name, array in arrays.items()}
    for name, shape in shapes.items():
        n_rows = n_train if "train" in name else n_test
        if len(shape) != 2 or shape[0] != n_rows:
            raise ValueError(
                f"{name} must be a 2-D array with one row per label ({n_rows}); got shape {shape}"
            )
    for train_name, test_name in (("X_train_high", "X_test_high"), ("map_train", "map_test")):
        if shapes[train_name][1] != shapes[test_name][1]:
            raise ValueError(
                f"{train_name} and {test_name} must have the same number of columns; got shapes "
                f"{shapes[train_name]} and {shapes[test_name]}"
            )


def _gather(train: object, test: object, chosen: np.ndarray) -> np.ndarray:
    """Select rows of the training and test arrays stacked, by sorted indices into the stack."""
    train, test = np.asarray(train), np.asarray(test)
    in_train = chosen < len(train)
    return np.concatenate([train[chosen[in_train]], test[chosen[~in_train] - len(train)]])


def _batches(n: int) -> list[slice]:
    return [slice(start, min(start + _BATCH_SIZE, n)) for start in range(0, n, _BATCH_SIZE)]


def _squared_distances(X: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances between the rows X[first] and X[second], pair by pair."""
    difference = X[first] - X[second]
    return np.einsum("ij,ij->i", difference, difference)
