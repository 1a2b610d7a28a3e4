"""Tests for the map quality metrics against known results, with scikit-learn as the reference."""

import numpy as np
import pytest
from omegaconf import OmegaConf
from sklearn.datasets import make_blobs, make_swiss_roll
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness

from src.errors import ConfigError
from src.quality import (
    QUALITY_DEFAULTS,
    distance_spearman,
    knn_retention,
    linear_probe_accuracy,
    map_quality,
    silhouette_2d,
    stratified_subsample,
    triplet_accuracy,
    trustworthiness_continuity,
    validate_quality_config,
)

METRIC_KEYS = {"trustworthiness", "continuity", "triplet_acc", "distance_spearman", "silhouette"}


@pytest.fixture
def noisy_projection():
    """Points in 20-D and a 2-D map that keeps two coordinates plus noise: (X, embedding)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 20))
    embedding = X[:, :2] + 0.3 * rng.normal(size=(300, 2))
    return X, embedding


@pytest.fixture
def labelled_split():
    """Blobs in 30-D, their PCA map, split into 400 training and 200 test points."""
    X, y = make_blobs(n_samples=600, n_features=30, centers=5, cluster_std=4.0, random_state=0)
    embedding = PCA(n_components=2, random_state=0).fit_transform(X)
    return {
        "X_train_high": X[:400],
        "X_test_high": X[400:],
        "y_train": y[:400],
        "y_test": y[400:],
        "map_train": embedding[:400],
        "map_test": embedding[400:],
    }


@pytest.mark.parametrize("k", [1, 5, 10, 40])
def test_trustworthiness_matches_sklearn_on_random_data(noisy_projection, k):
    X, embedding = noisy_projection

    trust, _ = trustworthiness_continuity(X, embedding, k)

    assert trust == pytest.approx(trustworthiness(X, embedding, n_neighbors=k), abs=1e-12)


def test_trustworthiness_matches_sklearn_on_swiss_roll():
    X, _ = make_swiss_roll(n_samples=400, noise=0.1, random_state=0)
    embedding = PCA(n_components=2, random_state=0).fit_transform(X)

    trust, continuity = trustworthiness_continuity(X, embedding, k=12)

    assert trust == pytest.approx(trustworthiness(X, embedding, n_neighbors=12), abs=1e-12)
    assert continuity == pytest.approx(trustworthiness(embedding, X, n_neighbors=12), abs=1e-12)
    # PCA folds the roll onto itself, so the map is far from perfect but far above chance.
    assert 0.6 < trust < 0.99


def test_continuity_equals_swapped_trustworthiness(noisy_projection):
    X, embedding = noisy_projection

    trust, continuity = trustworthiness_continuity(X, embedding, k=10)
    swapped_trust, swapped_continuity = trustworthiness_continuity(embedding, X, k=10)

    assert continuity == pytest.approx(trustworthiness(embedding, X, n_neighbors=10), abs=1e-12)
    assert continuity == swapped_trust
    assert trust == swapped_continuity
    assert trust != continuity


def test_small_chunks_give_same_scores(noisy_projection):
    X, embedding = noisy_projection

    whole = trustworthiness_continuity(X, embedding, k=10)
    # 0.01 MiB fits about four rows of 300 distances, so the pass runs in ~75 chunks.
    chunked = trustworthiness_continuity(X, embedding, k=10, working_memory=0.01)

    assert chunked == whole


def test_identity_map_scores_one():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 2))

    trust, continuity = trustworthiness_continuity(X, X, k=10)

    assert trust == 1.0
    assert continuity == 1.0
    assert triplet_accuracy(X, X, n_triplets=20_000) == 1.0
    assert distance_spearman(X, X, n_pairs=20_000) == pytest.approx(1.0, abs=1e-12)


def test_identity_map_with_ties_scores_one():
    # A grid with every point three times: many neighbours tie, at distance 0 and beyond.
    grid = np.array([[row, column] for row in range(12) for column in range(12)], dtype=float)
    X = np.repeat(grid, 3, axis=0)

    trust, continuity = trustworthiness_continuity(X, X, k=10)

    assert trust == 1.0
    assert continuity == 1.0
    assert triplet_accuracy(X, X, n_triplets=5_000) == 1.0


def test_random_map_scores_near_chance():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(2000, 10))
    embedding = rng.normal(size=(2000, 2))

    trust, continuity = trustworthiness_continuity(X, embedding, k=10)

    # Tolerances are several standard errors wide, measured over seeds for these sizes.
    assert trust == pytest.approx(0.5, abs=0.02)
    assert continuity == pytest.approx(0.5, abs=0.02)
    assert triplet_accuracy(X, embedding, n_triplets=50_000) == pytest.approx(0.5, abs=0.02)
    assert distance_spearman(X, embedding, n_pairs=50_000) == pytest.approx(0.0, abs=0.05)


def _similar_maps(embedding):
    angle = 0.7
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return {
        "rotated": embedding @ rotation.T,
        "reflected": embedding * np.array([-1.0, 1.0]),
        "scaled": 3.5 * embedding,
        "translated": embedding + np.array([40.0, -25.0]),
    }


@pytest.mark.parametrize("transform", ["rotated", "reflected", "scaled", "translated"])
def test_similar_map_scores_as_original(labelled_split, transform):
    original = map_quality(**labelled_split, k=10, n_triplets=20_000, n_pairs=20_000, seed=3)
    moved = dict(labelled_split)
    moved["map_train"] = _similar_maps(labelled_split["map_train"])[transform]
    moved["map_test"] = _similar_maps(labelled_split["map_test"])[transform]

    scores = map_quality(**moved, k=10, n_triplets=20_000, n_pairs=20_000, seed=3)

    for key in METRIC_KEYS:
        assert scores[key] == pytest.approx(original[key], abs=1e-9), key


def test_map_quality_returns_every_metric_in_range(labelled_split):
    scores = map_quality(**labelled_split, k=10, n_points=300, n_triplets=10_000, n_pairs=10_000)

    assert set(scores) == METRIC_KEYS
    for key in ("trustworthiness", "continuity", "triplet_acc"):
        assert 0.5 < scores[key] <= 1.0, key
    assert 0.0 < scores["distance_spearman"] <= 1.0
    assert -1.0 <= scores["silhouette"] <= 1.0


def test_map_quality_all_points_matches_direct(labelled_split):
    X = np.concatenate([labelled_split["X_train_high"], labelled_split["X_test_high"]])
    embedding = np.concatenate([labelled_split["map_train"], labelled_split["map_test"]])

    scores = map_quality(**labelled_split, k=10, n_points=10_000, n_triplets=1000, n_pairs=1000)

    assert (scores["trustworthiness"], scores["continuity"]) == trustworthiness_continuity(X, embedding, k=10)


def test_map_quality_is_deterministic_by_seed(labelled_split):
    settings = {"k": 10, "n_points": 300, "n_triplets": 5000, "n_pairs": 5000}

    first = map_quality(**labelled_split, **settings, seed=5)
    again = map_quality(**labelled_split, **settings, seed=5)
    other = map_quality(**labelled_split, **settings, seed=6)

    assert first == again
    assert first["trustworthiness"] != other["trustworthiness"]


def test_map_quality_rejects_mismatched_rows(labelled_split):
    broken = dict(labelled_split, map_test=labelled_split["map_test"][:-1])

    with pytest.raises(ValueError, match=r"map_test must be a 2-D array with one row per label \(200\); got shape \(199, 2\)"):
        map_quality(**broken)


def test_trustworthiness_rejects_large_k(noisy_projection):
    X, embedding = noisy_projection

    with pytest.raises(ValueError, match=r"k must be a whole number in \[1, n_samples / 2\).*got k=150 with n_samples=300"):
        trustworthiness_continuity(X, embedding, k=150)


def test_trustworthiness_rejects_nan(noisy_projection):
    X, embedding = noisy_projection
    embedding = embedding.copy()
    embedding[3, 1] = np.nan

    with pytest.raises(ValueError, match="X_low must contain only finite values"):
        trustworthiness_continuity(X, embedding, k=10)


def test_distance_spearman_of_collapsed_map_is_nan(noisy_projection):
    X, _ = noisy_projection

    assert np.isnan(distance_spearman(X, np.zeros((len(X), 2)), n_pairs=1000))


def test_silhouette_separated_and_mixed_labels():
    X, y = make_blobs(n_samples=500, n_features=2, centers=[[-20, 0], [20, 0]], cluster_std=1.0, random_state=0)
    shuffled = np.random.default_rng(0).permutation(y)

    assert silhouette_2d(X, y) > 0.9
    assert silhouette_2d(X, shuffled) == pytest.approx(0.0, abs=0.05)
    assert np.isnan(silhouette_2d(X, np.zeros(len(X), dtype=int)))


def test_stratified_subsample_keeps_class_shares():
    y = np.repeat(np.arange(4), [500, 300, 150, 50])

    chosen = stratified_subsample(y, 333, seed=0)

    assert len(chosen) == 333
    assert len(np.unique(chosen)) == 333
    assert np.all(np.diff(chosen) > 0)
    expected = 333 * np.array([500, 300, 150, 50]) / len(y)
    counts = np.bincount(y[chosen], minlength=4)
    assert np.all(np.abs(counts - expected) < 1), counts


def test_stratified_subsample_is_deterministic_by_seed():
    y = np.random.default_rng(0).integers(0, 10, size=5000)

    first = stratified_subsample(y, 700, seed=1)

    assert np.array_equal(first, stratified_subsample(y, 700, seed=1))
    assert not np.array_equal(first, stratified_subsample(y, 700, seed=2))


def test_stratified_subsample_large_n_takes_all():
    y = np.array([3, 1, 3, 2])

    assert np.array_equal(stratified_subsample(y, 4, seed=0), np.arange(4))
    assert np.array_equal(stratified_subsample(y, 100, seed=0), np.arange(4))


def test_stratified_subsample_rejects_zero():
    with pytest.raises(ValueError, match="n must be a whole number >= 1; got 0"):
        stratified_subsample(np.arange(10), 0, seed=0)


def test_probe_separable_blobs_score_near_one():
    X, y = make_blobs(n_samples=2000, n_features=50, centers=10, cluster_std=2.0, random_state=0)

    assert linear_probe_accuracy(X[:1500], y[:1500], X[1500:], y[1500:], seed=0) > 0.98


def test_probe_random_labels_score_near_chance():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 50))
    y = rng.integers(0, 10, size=3000)

    accuracy = linear_probe_accuracy(X[:2000], y[:2000], X[2000:], y[2000:], seed=0)

    # Chance is 0.1, and the standard error on 1,000 test points is about 0.01.
    assert accuracy == pytest.approx(0.1, abs=0.04)


def test_probe_warns_when_stopped_early(caplog):
    X, y = make_blobs(n_samples=600, n_features=20, centers=5, cluster_std=6.0, random_state=0)

    with caplog.at_level("WARNING", logger="src.quality"):
        linear_probe_accuracy(X[:400], y[:400], X[400:], y[400:], seed=0, max_iter=1)

    assert "stopped at max_iter=1 before converging" in caplog.text


def test_knn_retention_ratio_and_zero():
    assert knn_retention(0.45, 0.9) == pytest.approx(0.5)
    assert knn_retention(0.95, 0.9) == pytest.approx(0.95 / 0.9)
    assert np.isnan(knn_retention(0.3, 0.0))


def test_validate_fills_defaults():
    settings = validate_quality_config(OmegaConf.create({"k": 15, "probe": False}))

    assert settings == {**QUALITY_DEFAULTS, "k": 15, "probe": False}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("k", 0, "quality.k must be a whole number >= 1; got 0. Set e.g. quality.k=10."),
        ("k", 2.5, "quality.k must be a whole number >= 1; got 2.5. Set e.g. quality.k=10."),
        ("n_points", True, "quality.n_points must be a whole number >= 3; got True. Set e.g. quality.n_points=5000."),
        ("n_triplets", -1, "quality.n_triplets must be a whole number >= 1; got -1. Set e.g. quality.n_triplets=100000."),
        ("n_pairs", 1, "quality.n_pairs must be a whole number >= 2; got 1. Set e.g. quality.n_pairs=100000."),
        ("enabled", "yes", "quality.enabled must be true or false; got 'yes'. Set quality.enabled=true or quality.enabled=false."),
        ("probe", 1, "quality.probe must be true or false; got 1. Set quality.probe=true or quality.probe=false."),
    ],
)
def test_validate_rejects_bad_value(key, value, message):
    with pytest.raises(ConfigError) as raised:
        validate_quality_config({key: value})

    assert str(raised.value) == message


def test_validate_rejects_unknown_key():
    with pytest.raises(ConfigError, match=r"quality.n_neighbors is not a config key; got quality.n_neighbors=10. Known keys of quality: enabled, k,"):
        validate_quality_config({"n_neighbors": 10})


def test_validate_rejects_k_for_n_points():
    with pytest.raises(ConfigError, match=r"quality.k must be less than quality.n_points / 2.*got k=10 with n_points=20"):
        validate_quality_config({"k": 10, "n_points": 20})


def test_validate_rejects_k_for_small_data():
    with pytest.raises(ConfigError, match=r"got k=10 with 19 points scored \(19 training and test points, quality.n_points=5000\)"):
        validate_quality_config({"k": 10}, n_available=19)

    assert validate_quality_config({"k": 10}, n_available=21)["k"] == 10
