"""Scatter and training-curve figures are written as PNGs and closed."""

from __future__ import annotations

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from src.plotting import plot_layer_embedding, plot_training_curves  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_layer_scatter_writes_png(tmp_path):
    rng = np.random.default_rng(0)
    train, test = rng.normal(size=(300, 2)), rng.normal(size=(80, 2))
    y_train, y_test = rng.integers(0, 10, 300), rng.integers(0, 10, 80)
    path = plot_layer_embedding(train, y_train, test, y_test, "pca · hidden_1", tmp_path / "scatter.png")
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    assert plt.get_fignums() == []


def test_training_curves_write_png(tmp_path):
    history = {"loss": [1.0, 0.5], "accuracy": [0.6, 0.8], "val_loss": [1.1, 0.7], "val_accuracy": [0.5, 0.7]}
    path = plot_training_curves(history, "curves", tmp_path / "curves.png")
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    assert plt.get_fignums() == []


def test_training_curves_without_validation(tmp_path):
    path = plot_training_curves({"loss": [1.0], "accuracy": [0.5]}, "curves", tmp_path / "curves.png")
    assert path.stat().st_size > 1000
