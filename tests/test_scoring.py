"""Tests for kNN accuracy scoring against known results, with scikit-learn as the reference."""

import re

import numpy as np
import pytest
from omegaconf import OmegaConf
from sklearn.neighbors import KNeighborsClassifier

from src.errors import ConfigError
from src.scoring import knn_accuracy, validate_k

K_VALUES = [1, 3, 5, 10]


def _stable_votes(X_train, y_train, X_test, k):
    """Count label votes, shape (n_test, n_labels), from the full distance matrix.

    Among training points at the same distance, the one with the smaller index is nearer.
    """
    distances = np.linalg.norm(X_test[:, None, :] - X_train[None, :, :], axis=2)
    nearest = np.argsort(distances, axis=1, kind="stable")[:, :k]
    return np.stack([np.bincount(row, minlength=y_train.max() + 1) for row in y_train[nearest]])


def _count_vote_ties(X_train, y_train, X_test, k):
    votes = _stable_votes(X_train, y_train, X_test, k)
    return int(np.sum(np.sum(votes == votes.max(axis=1, keepdims=True), axis=1) > 1))


def _count_distance_ties_at_k(X_train, X_test, k):
    distances = np.sort(np.linalg.norm(X_test[:, None, :] - X_train[None, :, :], axis=2), axis=1)
    return int(np.sum(distances[:, k - 1] == distances[:, k]))


def test_separable_blobs_score_near_one():
    rng = np.random.default_rng(0)
    angles = np.linspace(0, 2 * np.pi, 5, endpoint=False)
    centres = 10 * np.column_stack([np.cos(angles), np.sin(angles)])
    y = rng.integers(0, 5, size=1000)
    X = centres[y] + rng.normal(scale=0.5, size=(1000, 2))

    accuracy = knn_accuracy(X[:600], y[:600], X[600:], y[600:], K_VALUES)

    for k in K_VALUES:
        assert accuracy[k] > 0.98, f"k={k}"


def test_random_embedding_scores_near_chance():
    rng = np.random.default_rng(0)
    n_classes = 5
    X = rng.normal(size=(4000, 2))
    y = rng.integers(0, n_classes, size=4000)

    accuracy = knn_accuracy(X[:2000], y[:2000], X[2000:], y[2000:], K_VALUES)

    for k in K_VALUES:
        assert abs(accuracy[k] - 1 / n_classes) < 0.05, f"k={k}"


def test_embedding_equal_to_input_scores_as_input():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=600)
    X = rng.normal(size=(600, 2)) + y[:, None]
    angle = 0.7
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = X @ rotation + np.array([5.0, -3.0])

    on_input = knn_accuracy(X[:400], y[:400], X[400:], y[400:], K_VALUES)
    on_copy = knn_accuracy(X[:400].copy(), y[:400], X[400:].copy(), y[400:], K_VALUES)
    on_moved = knn_accuracy(moved[:400], y[:400], moved[400:], y[400:], K_VALUES)

    assert on_copy == on_input
    assert on_moved == on_input


@pytest.mark.parametrize("algorithm", ["auto", "brute"])
def test_matches_sklearn_with_vote_ties(algorithm):
    rng = np.random.default_rng(0)
    X_train = rng.normal(size=(300, 2))
    y_train = rng.integers(0, 3, size=300)
    X_test = rng.normal(size=(200, 2))
    y_test = rng.integers(0, 3, size=200)

    accuracy = knn_accuracy(X_train, y_train, X_test, y_test, K_VALUES)

    assert _count_vote_ties(X_train, y_train, X_test, k=10) > 0
    for k in K_VALUES:
        classifier = KNeighborsClassifier(n_neighbors=k, algorithm=algorithm)
        expected = classifier.fit(X_train, y_train).score(X_test, y_test)
        assert accuracy[k] == expected, f"k={k}"


def test_integer_coordinates_break_ties_by_index():
    rng = np.random.default_rng(0)
    X_train = rng.integers(0, 4, size=(200, 2)).astype(float)
    y_train = rng.integers(0, 3, size=200)
    X_test = rng.integers(0, 4, size=(100, 2)).astype(float)
    y_test = rng.integers(0, 3, size=100)

    accuracy = knn_accuracy(X_train, y_train, X_test, y_test, K_VALUES)

    assert _count_distance_ties_at_k(X_train, X_test, k=5) > 0
    for k in K_VALUES:
        votes = _stable_votes(X_train, y_train, X_test, k)
        expected = float(np.mean(np.argmax(votes, axis=1) == y_test))
        assert accuracy[k] == expected, f"k={k}"


def test_equal_distance_goes_to_smaller_index():
    X_test = np.array([[0.0]])
    y_test = np.array([1])

    X_train = np.array([[-1.0], [1.0], [5.0]])
    swapped = np.array([[1.0], [-1.0], [5.0]])

    first_is_label_1 = knn_accuracy(X_train, np.array([1, 0, 0]), X_test, y_test, [1])
    first_is_label_0 = knn_accuracy(swapped, np.array([0, 1, 0]), X_test, y_test, [1])

    assert first_is_label_1 == {1: 1.0}
    assert first_is_label_0 == {1: 0.0}


def test_tied_vote_goes_to_smallest_label():
    X_train = np.array([[-1.0], [1.0], [5.0]])
    X_test = np.array([[0.0]])

    label_0_wins = knn_accuracy(X_train, np.array([2, 0, 1]), X_test, np.array([0]), [2])
    label_2_loses = knn_accuracy(X_train, np.array([2, 0, 1]), X_test, np.array([2]), [2])

    assert label_0_wins == {2: 1.0}
    assert label_2_loses == {2: 0.0}


def test_result_keeps_order_and_drops_duplicates():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 2))
    y = rng.integers(0, 2, size=100)

    accuracy = knn_accuracy(X[:60], y[:60], X[60:], y[60:], [10, 3, 10, 1])

    assert list(accuracy) == [10, 3, 1]


def test_high_dimensional_layer_space_matches_sklearn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, size=1500)
    X = rng.normal(size=(1500, 784)).astype(np.float32) + y[:, None].astype(np.float32) * 0.1

    accuracy = knn_accuracy(X[:1000], y[:1000], X[1000:], y[1000:], [5])

    classifier = KNeighborsClassifier(n_neighbors=5).fit(X[:1000], y[:1000])
    assert accuracy[5] == classifier.score(X[1000:], y[1000:])


@pytest.mark.parametrize(
    ("k", "n_train", "message"),
    [
        ([0], 100, "knn.k must be whole numbers >= 1; got [0]. Remove the values below 1"),
        ([3, 100], 100, "below the number of training digits, 100; got [3, 100]. Lower the largest k (at most 99)"),
        ([2.5], 100, "knn.k must be whole numbers >= 1; got [2.5]"),
        ([True], 100, "knn.k must be whole numbers >= 1; got [True]"),
        ([-1], None, "knn.k must be whole numbers >= 1; got [-1]"),
        ([], None, "knn.k must be a non-empty list of whole numbers; got []"),
        (5, None, "knn.k must be a non-empty list of whole numbers; got 5. Set e.g. `knn.k=[3,5"),
        ("5", None, "knn.k must be a non-empty list of whole numbers; got '5'"),
    ],
)
def test_validate_k_rejects_bad_values(k, n_train, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_k(k, n_train)


def test_validate_k_accepts_config_list():
    validate_k(OmegaConf.create([3, 5, 10]), n_train=11)


def test_knn_accuracy_rejects_k_not_below_n_train():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 2))
    y = rng.integers(0, 2, size=20)

    with pytest.raises(ConfigError, match=re.escape("below the number of training digits, 10; got [3, 10]")):
        knn_accuracy(X[:10], y[:10], X[10:], y[10:], [3, 10])


def test_knn_accuracy_rejects_mismatched_labels():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 2))
    y = rng.integers(0, 2, size=20)

    message = "y_train must be a 1-D array with one label per row of X_train; got shape (9,)"
    with pytest.raises(ValueError, match=re.escape(message)):
        knn_accuracy(X[:10], y[:9], X[10:], y[10:], [3])


def test_knn_accuracy_rejects_mismatched_features():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=10)

    with pytest.raises(ValueError, match=re.escape("same number of features; got 2 and 3")):
        knn_accuracy(rng.normal(size=(10, 2)), y, rng.normal(size=(10, 3)), y, [3])
