"""Score an embedding, or any layer space, by k-nearest-neighbour classification accuracy."""

from __future__ import annotations

import logging
import numbers
from collections.abc import Sequence

import numpy as np
from sklearn.neighbors import NearestNeighbors

from src.errors import ConfigError

logger = logging.getLogger(__name__)


def validate_k(k: Sequence[int], n_train: int | None = None) -> None:
    """Raise ConfigError unless ``k`` is a non-empty list of whole numbers in [1, n_train).

    Parameters
    ----------
    k : sequence of int
        Neighbour counts, the ``knn.k`` config value.
    n_train : int or None, default=None
        Number of training points. None checks only the lower bound, for use before the
        data are loaded.

    Raises
    ------
    ConfigError
        Naming ``knn.k``, the rule and the values received.
    """
    if isinstance(k, (str, bytes)) or not isinstance(k, Sequence) or len(k) == 0:
        raise ConfigError(
            f"knn.k must be a non-empty list of whole numbers; got {k!r}. "
            "Set e.g. `knn.k=[3,5,10]`."
        )
    values = list(k)
    whole = [isinstance(value, numbers.Integral) and not isinstance(value, bool) for value in values]
    if not all(whole) or min(values) < 1:
        raise ConfigError(
            f"knn.k must be whole numbers >= 1; got {values}. Remove the values below 1, e.g. `knn.k=[3,5,10]`."
        )
    if n_train is not None and max(values) >= n_train:
        raise ConfigError(
            f"knn.k must be below the number of training digits, {n_train}; got {values}. "
            f"Lower the largest k (at most {n_train - 1}), or use more training digits "
            "(data.n_train, or data=mnist for the full set)."
        )


def knn_accuracy(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    k: Sequence[int],
) -> dict[int, float]:
    """Return the accuracy of k-nearest-neighbour classification of the test points, per k.

    Each test point gets the majority label of its k nearest training points (Euclidean
    distance, uniform weights). The neighbour search runs once, for the largest k, and every
    smaller k votes with the first k of those neighbours.

    A tied vote goes to the smallest label, as in scikit-learn's ``KNeighborsClassifier``
    with uniform weights, so the predictions equal its predictions whenever no two training
    points tie at a test point's k-th distance. Where they do tie (duplicated points,
    integer-valued coordinates), this function counts the training point with the smaller
    index as nearer. scikit-learn 1.9 keeps whichever of them its search heap holds, so
    there the two can disagree.

    Parameters
    ----------
    X_train : array-like of shape (n_train, n_features)
        Training points, e.g. a 2-D map or a layer's activations.
    y_train : array-like of shape (n_train,)
        Labels of the training points.
    X_test : array-like of shape (n_test, n_features)
        Test points in the same space.
    y_test : array-like of shape (n_test,)
        Labels of the test points.
    k : sequence of int
        Neighbour counts, each in [1, n_train).

    Returns
    -------
    dict of int to float
        Accuracy in [0, 1] for each distinct k, in the order given.

    Raises
    ------
    ConfigError
        If ``k`` breaks the rule of validate_k().
    ValueError
        If the array shapes do not match or there are no test points.
    """
    X_train, y_train = _check_labelled(X_train, y_train, "train")
    X_test, y_test = _check_labelled(X_test, y_test, "test")
    if X_train.shape[1] != X_test.shape[1]:
        raise ValueError(
            f"X_train and X_test must have the same number of features; got "
            f"{X_train.shape[1]} and {X_test.shape[1]}"
        )
    validate_k(k, len(X_train))
    k_values = [int(value) for value in dict.fromkeys(k)]

    classes, train_class = np.unique(y_train, return_inverse=True)
    neighbors = _nearest_training_points(X_train, X_test, max(k_values))

    # Add one vote per neighbour column, and read off the prediction after the k-th column.
    votes = np.zeros((len(X_test), len(classes)), dtype=np.int64)
    rows = np.arange(len(X_test))
    accuracy_at = {}
    for column in range(neighbors.shape[1]):
        votes[rows, train_class[neighbors[:, column]]] += 1
        if column + 1 in k_values:
            # argmax returns the first maximum, so a tied vote goes to the smallest label.
            predicted = classes[np.argmax(votes, axis=1)]
            accuracy_at[column + 1] = float(np.mean(predicted == y_test))
    return {value: accuracy_at[value] for value in k_values}


def _check_labelled(X: object, y: object, part: str) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X)
    y = np.asarray(y)
    if X.ndim != 2:
        raise ValueError(
            f"X_{part} must be a 2-D array (n_samples, n_features); got shape {X.shape}"
        )
    if y.shape != (len(X),):
        raise ValueError(
            f"y_{part} must be a 1-D array with one label per row of X_{part}; got shape "
            f"{y.shape} for X_{part} of shape {X.shape}"
        )
    if len(X) == 0:
        raise ValueError(f"X_{part} must contain at least one point; got shape {X.shape}")
    return X, y


def _nearest_training_points(
    X_train: np.ndarray, X_test: np.ndarray, n_neighbors: int
) -> np.ndarray:
    """Find the nearest training points of each test point: indices, (n_test, n_neighbors).

    Each row is sorted by distance, and training points at the same distance by index.
    kneighbors() leaves equidistant points in no defined order, and a vote over the first k
    columns must not depend on that order.
    """
    # Brute force is exact, and faster than tree searches in layer spaces of hundreds of dimensions.
    search = NearestNeighbors(n_neighbors=n_neighbors, algorithm="brute", n_jobs=-1)
    distances, neighbors = search.fit(X_train).kneighbors(X_test)
    order = np.lexsort((neighbors, distances), axis=1)
    return np.take_along_axis(neighbors, order, axis=1)
