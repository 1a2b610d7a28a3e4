"""Per-epoch snapshots, aligned maps, kNN per epoch and the animation and panel figures.

One test module fixture trains a small Keras MLP on scikit-learn's 8x8 digits with the
activation recorder. Every other test runs on NumPy arrays or the digits themselves.
"""

from __future__ import annotations

import logging

import matplotlib
import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image
from sklearn.datasets import load_digits

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import src.evolution as evolution  # noqa: E402
from src.errors import ConfigError  # noqa: E402
from src.evolution import (  # noqa: E402
    EVOLUTION_DEFAULTS,
    aligned_maps,
    evolution_subset,
    knn_split,
    per_epoch_knn,
    plot_small_multiples,
    procrustes_align,
    procrustes_disparity,
    save_animation,
    save_mp4,
    save_small_multiples,
    snapshot_epochs,
    validate_evolution_config,
)

PCA = {"name": "pca", "protocol": "transductive"}
TRAIN_EPOCHS = 4
REQUESTED_EPOCHS = [0, 1, 2, 10]
LAYERS = ["hidden_1", "hidden_2"]


def rms_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Root mean square distance between matching points of two maps."""
    return float(np.sqrt(np.mean(np.sum((np.asarray(a) - np.asarray(b)) ** 2, axis=1))))


def consecutive_rms(maps: dict[int, np.ndarray]) -> float:
    epochs = sorted(maps)
    return sum(rms_distance(maps[before], maps[after]) for before, after in zip(epochs, epochs[1:]))


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16.0).astype(np.float32), y


@pytest.fixture
def drifting_maps():
    """Four maps of 300 points, each a slightly moved copy of the one before."""
    rng = np.random.default_rng(0)
    maps = {0: rng.normal(size=(300, 2)).astype(np.float32)}
    for epoch in (1, 2, 5):
        previous = maps[max(maps)]
        maps[epoch] = (previous + rng.normal(scale=0.1, size=previous.shape)).astype(np.float32)
    return maps, rng.integers(0, 10, 300)


@pytest.fixture(scope="module")
def recorded_run(digits):
    """Train a 64-32-16-10 MLP for 4 epochs with the recorder on 300 fixed digits."""
    import keras

    from src.activations import extract_activations
    from src.model import build_mlp, set_global_seed

    X, y = digits
    subset = evolution_subset(y[1000:], n=300, seed=0) + 1000
    epochs = snapshot_epochs(REQUESTED_EPOCHS, TRAIN_EPOCHS)

    set_global_seed(0)
    model = build_mlp(n_features=64, n_classes=10, hidden_units=[32, 16], dropout=0.2)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    (untrained,) = extract_activations(model, LAYERS, X[subset])
    recorder = evolution.activation_recorder(X[subset], LAYERS, epochs)
    model.fit(X[:1000], y[:1000], epochs=TRAIN_EPOCHS, batch_size=64, verbose=0, callbacks=[recorder])
    (trained,) = extract_activations(model, LAYERS, X[subset])
    return {
        "epochs": epochs, "recorder": recorder, "untrained": untrained, "trained": trained, "y": y[subset],
    }


def test_snapshot_epochs_adds_last_drops_late(caplog):
    with caplog.at_level(logging.WARNING, logger="src.evolution"):
        epochs = snapshot_epochs([0, 1, 2, 5, 10], 3)
    assert epochs == [0, 1, 2, 3]
    assert "evolution.epochs [5, 10] exceed train.epochs=3" in caplog.text


def test_snapshot_epochs_sorted_unique():
    assert snapshot_epochs([5, 0, 5, 1, 10], 10) == [0, 1, 5, 10]
    assert snapshot_epochs(OmegaConf.create([2, 0]), 2) == [0, 2]


def test_snapshot_epochs_rejects_negative():
    with pytest.raises(ConfigError, match=r"evolution\.epochs must be a non-empty list .* got \[0, -1\]"):
        snapshot_epochs([0, -1], 5)


def test_validate_evolution_accepts_defaults():
    validate_evolution_config(EVOLUTION_DEFAULTS)
    validate_evolution_config(OmegaConf.create({"enabled": True, "epochs": [0, 3], "n_points": 500, "fps": 0.5}))
    validate_evolution_config({})


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"enabled": "yes"}, r"evolution\.enabled must be true or false; got 'yes'"),
        ({"epochs": []}, r"evolution\.epochs must be a non-empty list of whole numbers >= 0 .* got \[\]"),
        ({"epochs": [0, 1.5]}, r"evolution\.epochs must be .* got \[0, 1\.5\]\. Set e\.g\."),
        ({"epochs": "last"}, r"evolution\.epochs must be .* got 'last'"),
        ({"n_points": 10}, r"evolution\.n_points must be a whole number >= 20; got 10\. Set e\.g\."),
        ({"n_points": True}, r"evolution\.n_points must be a whole number >= 20; got True"),
        ({"fps": 0}, r"evolution\.fps must be a number in \(0, 50\]; got 0\. Set e\.g\."),
        ({"fps": 120}, r"evolution\.fps must be a number in \(0, 50\]; got 120"),
        ({"n_point": 100}, r"evolution\.n_point is not a setting of evolution; got 100\. Remove it, or use one of"),
        ([0, 1], r"evolution must be a mapping with keys enabled, epochs, n_points, fps; got \[0, 1\]"),
    ],
)
def test_validate_evolution_rejects(section, message):
    with pytest.raises(ConfigError, match=message):
        validate_evolution_config(section)


def test_evolution_subset_stratified_and_fixed(digits, caplog):
    _, y = digits
    subset = evolution_subset(y, n=200, seed=3)
    assert len(subset) == 200
    assert len(np.unique(subset)) == 200
    assert np.all(np.diff(subset) > 0)
    expected = 200 * np.bincount(y) / len(y)
    assert np.all(np.abs(np.bincount(y[subset]) - expected) <= 1)
    assert np.array_equal(subset, evolution_subset(y, n=200, seed=3))

    with caplog.at_level(logging.WARNING, logger="src.evolution"):
        everything = evolution_subset(y[:50], n=2000)
    assert np.array_equal(everything, np.arange(50))
    assert "evolution.n_points=2000 is not smaller than the 50 points" in caplog.text


def test_knn_split_halves_disjoint_stratified(digits):
    _, y = digits
    fit_index, score_index = knn_split(y[:501], seed=0)
    assert len(fit_index) == 250
    assert len(score_index) == 251
    assert not set(fit_index) & set(score_index)
    assert np.all(np.abs(np.bincount(y[fit_index]) - np.bincount(y[score_index])) <= 1)


@pytest.mark.parametrize("reflect", [False, True])
def test_procrustes_align_recovers_similar_copy(reflect):
    rng = np.random.default_rng(1)
    reference = rng.normal(size=(200, 2))
    angle = 2.1
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    if reflect:
        rotation = rotation @ np.diag([1.0, -1.0])
    copy = 3.7 * reference @ rotation + np.array([5.0, -2.0])

    aligned = procrustes_align(copy, reference)
    assert aligned.dtype == np.float32
    np.testing.assert_allclose(aligned, reference, atol=1e-5)
    assert procrustes_disparity(reference, copy) < 1e-12


def test_procrustes_align_keeps_reference_spread():
    rng = np.random.default_rng(2)
    reference, unrelated = rng.normal(size=(300, 2)), 10.0 * rng.normal(size=(300, 2))
    aligned = procrustes_align(unrelated, reference)
    spread = np.linalg.norm(reference - reference.mean(axis=0))
    assert np.linalg.norm(aligned - aligned.mean(axis=0)) == pytest.approx(spread, rel=1e-5)
    np.testing.assert_allclose(aligned.mean(axis=0), reference.mean(axis=0), atol=1e-5)


def test_procrustes_disparity_unrelated_maps_near_one():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(500, 2)), rng.normal(size=(500, 2))
    assert procrustes_disparity(a, b) > 0.9
    assert procrustes_disparity(a, b) == pytest.approx(procrustes_disparity(b, a))


def test_procrustes_align_rejects_collapsed_map():
    with pytest.raises(ValueError, match="moving cannot be aligned because all of its 5 points coincide"):
        procrustes_align(np.ones((5, 2)), np.arange(10.0).reshape(5, 2))


def test_per_epoch_knn_known_answers():
    rng = np.random.default_rng(4)
    y = np.repeat(np.arange(10), 40)
    centres = 100.0 * rng.normal(size=(10, 2))
    maps = {0: rng.normal(size=(400, 2)), 3: centres[y] + rng.normal(size=(400, 2))}
    scores = per_epoch_knn(maps, y, k=[1, 5], seed=0)
    assert sorted(scores) == [0, 3]
    assert scores[3] == {1: 1.0, 5: 1.0}
    assert scores[0][5] < 0.3


def test_per_epoch_knn_rejects_k_above_half():
    y = np.repeat(np.arange(10), 4)
    with pytest.raises(ConfigError, match=r"knn\.k must be below the number of training digits, 20; got \[30\]"):
        per_epoch_knn({0: np.zeros((40, 2))}, y, k=[30])


def test_aligned_maps_pca_rotated_snapshots(digits):
    X, _ = digits
    rng = np.random.default_rng(5)
    rotation, _ = np.linalg.qr(rng.normal(size=(64, 64)))
    # The same points under an orthogonal change of basis: PCA finds the same map up to signs.
    snapshots = {0: X[:300], 1: X[:300] @ rotation, 2: 2.0 * X[:300] @ rotation.T}
    evolution_result = aligned_maps(snapshots, PCA, seed=0)

    assert sorted(evolution_result.aligned) == [0, 1, 2]
    assert evolution_result.initialised_from_previous is False
    np.testing.assert_array_equal(evolution_result.aligned[0], evolution_result.unaligned[0])
    for epoch in (1, 2):
        np.testing.assert_allclose(evolution_result.aligned[epoch], evolution_result.aligned[0], atol=1e-3)
        assert procrustes_disparity(evolution_result.unaligned[epoch], evolution_result.unaligned[0]) < 1e-8


@pytest.fixture
def embed_calls(monkeypatch):
    """Record the embedder config of every embed() call that aligned_maps() makes."""
    calls = []
    real_embed = evolution.embed

    def recording_embed(X_train, X_test, embedder_cfg, seed, progress=False):
        calls.append(dict(embedder_cfg))
        return real_embed(X_train, X_test, embedder_cfg, seed, progress)

    monkeypatch.setattr(evolution, "embed", recording_embed)
    return calls


@pytest.fixture
def noisy_snapshots(digits):
    """150 digits at epoch 0, and the same digits with a little noise at epoch 4."""
    X, _ = digits
    noise = 0.05 * np.random.default_rng(6).normal(size=(150, 64))
    return {0: X[:150], 4: (X[:150] + noise).astype(np.float32)}


def test_aligned_maps_tsne_starts_from_previous(noisy_snapshots, embed_calls):
    from openTSNE.initialization import rescale

    tsne = {
        "name": "tsne", "protocol": "transductive", "perplexity": 10, "n_iter": 60,
        "early_exaggeration_iter": 0, "initialization": "pca", "n_jobs": 1,
    }
    result = aligned_maps(noisy_snapshots, tsne, seed=0)

    assert result.initialised_from_previous is True
    assert embed_calls[0]["initialization"] == "pca"
    started_from = embed_calls[1]["initialization"]
    np.testing.assert_allclose(started_from, rescale(result.unaligned[0]))
    assert np.std(started_from[:, 0]) == pytest.approx(1e-4)
    assert procrustes_disparity(result.unaligned[0], result.unaligned[4]) < 0.2


@pytest.mark.slow
def test_aligned_maps_umap_starts_from_previous(noisy_snapshots, embed_calls):
    umap = {
        "name": "umap", "protocol": "transductive", "n_neighbors": 10, "n_epochs": 50,
        "init": "spectral", "n_jobs": 1,
    }
    result = aligned_maps(noisy_snapshots, umap, seed=0)

    assert result.initialised_from_previous is True
    assert embed_calls[0]["init"] == "spectral"
    np.testing.assert_array_equal(embed_calls[1]["init"], result.unaligned[0])
    assert procrustes_disparity(result.unaligned[0], result.unaligned[4]) < 0.2


@pytest.mark.slow
def test_aligned_maps_trimap_without_start_map(noisy_snapshots, embed_calls):
    from trimap import TRIMAP

    # trimap 1.1.5 tests `init == "random"` on the array; this fails once a release fixes it.
    with pytest.raises(ValueError, match="truth value of an array with more than one element is ambiguous"):
        TRIMAP(n_dims=2, n_iters=10).fit_transform(noisy_snapshots[0], init=np.zeros((150, 2)))

    result = aligned_maps(noisy_snapshots, {"name": "trimap", "protocol": "transductive", "n_iters": 100}, seed=0)
    assert result.initialised_from_previous is False
    assert all("init" not in call for call in embed_calls)
    assert sorted(result.aligned) == [0, 4]
    assert consecutive_rms(result.aligned) <= consecutive_rms(result.unaligned)


def test_aligned_maps_rejects_unequal_snapshots():
    with pytest.raises(ValueError, match=r"every snapshot must contain the same points; got point counts \{0: 30, 1: 20\}"):
        aligned_maps({0: np.ones((30, 4)), 1: np.ones((20, 4))}, PCA, seed=0)


def test_recorder_keeps_requested_epochs(recorded_run):
    recorder = recorded_run["recorder"]
    assert recorded_run["epochs"] == [0, 1, 2, 4]
    assert sorted(recorder.activations) == [0, 1, 2, 4]
    for layers in recorder.activations.values():
        assert list(layers) == LAYERS
        assert layers["hidden_1"].shape == (300, 32)
        assert layers["hidden_2"].shape == (300, 16)
        assert layers["hidden_1"].dtype == np.float32


def test_recorder_epoch_zero_is_untrained(recorded_run):
    recorder = recorded_run["recorder"]
    for layer in LAYERS:
        np.testing.assert_array_equal(recorder.activations[0][layer], recorded_run["untrained"][layer])
        np.testing.assert_array_equal(recorder.activations[4][layer], recorded_run["trained"][layer])
        assert not np.allclose(recorder.activations[0][layer], recorder.activations[4][layer])


def test_alignment_steadies_real_run(recorded_run):
    recorder = recorded_run["recorder"]
    y = recorded_run["y"]
    for layer in LAYERS:
        snapshots = {epoch: layers[layer] for epoch, layers in recorder.activations.items()}
        result = aligned_maps(snapshots, PCA, seed=0)
        assert len(result.aligned) == len(recorded_run["epochs"])
        assert consecutive_rms(result.aligned) < consecutive_rms(result.unaligned), layer
        scores = per_epoch_knn(result.aligned, y, k=[5], seed=0)
        # Training separates the digits: the last map beats the untrained one.
        assert scores[4][5] > scores[0][5], layer


def test_animation_one_frame_per_epoch(drifting_maps, tmp_path):
    maps, y = drifting_maps
    path = save_animation(maps, y, "pca · hidden_1", tmp_path / "hidden_1.gif", fps=2, captions={5: "kNN 0.50"})
    assert path.read_bytes()[:6] == b"GIF89a"
    with Image.open(path) as gif:
        assert gif.n_frames == len(maps)
        assert gif.info["duration"] == 500
    assert plt.get_fignums() == []


def test_animation_rejects_mismatched_labels(drifting_maps, tmp_path):
    maps, y = drifting_maps
    with pytest.raises(ValueError, match=r"n_points = len\(y\) = 299; got shape \(300, 2\) at epoch 0"):
        save_animation(maps, y[:299], "t", tmp_path / "bad.gif")
    assert not (tmp_path / "bad.gif").exists()


def test_mp4_written_only_with_ffmpeg(drifting_maps, tmp_path):
    from matplotlib.animation import writers

    maps, y = drifting_maps
    path = save_mp4(maps, y, "pca · hidden_1", tmp_path / "hidden_1.mp4")
    if writers.is_available("ffmpeg"):
        assert path is not None
        assert path.stat().st_size > 0
    else:
        assert path is None
        assert not (tmp_path / "hidden_1.mp4").exists()
    assert plt.get_fignums() == []


def test_small_multiples_one_panel_per_epoch(drifting_maps, tmp_path):
    maps, y = drifting_maps
    fig = plot_small_multiples(maps, y, "pca · hidden_1")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    limits = {(ax.get_xlim(), ax.get_ylim()) for ax in fig.axes if ax.get_title()}
    plt.close(fig)
    assert titles == ["epoch 0 (before training)", "epoch 1", "epoch 2", "epoch 5"]
    assert len(limits) == 1

    path = save_small_multiples(maps, y, "pca · hidden_1", tmp_path / "hidden_1.png")
    assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(path) as image:
        assert image.width > image.height
    assert plt.get_fignums() == []


def test_small_multiples_wraps_after_five(tmp_path):
    rng = np.random.default_rng(7)
    maps = {epoch: rng.normal(size=(50, 2)) for epoch in range(7)}
    fig = plot_small_multiples(maps, rng.integers(0, 10, 50), "seven epochs")
    panels = [ax for ax in fig.axes if ax.get_title()]
    rows = {round(ax.get_position().y0, 3) for ax in panels}
    plt.close(fig)
    assert len(panels) == 7
    assert len(rows) == 2
