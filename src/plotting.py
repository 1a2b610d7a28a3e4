"""Figures: a scatter of each layer's map and the training curves.

Matplotlib runs on the Agg backend, so nothing needs a display, and every figure
is closed after it is saved.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

N_DIGITS = 10


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_layer_embedding(
    train: np.ndarray,
    y_train: np.ndarray,
    test: np.ndarray,
    y_test: np.ndarray,
    title: str,
    path: str | Path,
) -> Path:
    """Save the training and the test map of one layer side by side, coloured by digit.

    Parameters
    ----------
    train, test : ndarray of shape (n_train, 2) and (n_test, 2)
        Coordinates of the training and test points in the same map.
    y_train, y_test : ndarray of shape (n_train,) and (n_test,)
        Digit labels, 0-9.
    title : str
        Figure title, e.g. embedder, layer and kNN accuracy.
    path : str or Path
        PNG file to write.

    Returns
    -------
    Path
        The file written.
    """
    plt = _pyplot()
    from matplotlib.colors import BoundaryNorm, ListedColormap

    cmap = ListedColormap(plt.get_cmap("tab10").colors[:N_DIGITS])
    norm = BoundaryNorm(np.arange(-0.5, N_DIGITS), cmap.N)
    # Shared limits, so the two panels show the same region of the one map.
    both = np.vstack([train, test])
    low, high = both.min(axis=0), both.max(axis=0)
    pad = 0.03 * np.maximum(high - low, 1e-12)

    fig, axes = plt.subplots(1, 2, figsize=(12, 5.6), constrained_layout=True)
    for ax, points, labels, part in ((axes[0], train, y_train, "train"), (axes[1], test, y_test, "test")):
        size = 4 if len(points) > 2000 else 8
        scatter = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap=cmap, norm=norm, s=size, linewidths=0)
        ax.set_title(f"{part} ({len(points)} points)")
        ax.set_xlim(low[0] - pad[0], high[0] + pad[0])
        ax.set_ylim(low[1] - pad[1], high[1] + pad[1])
        ax.set_xticks([])
        ax.set_yticks([])
    colorbar = fig.colorbar(scatter, ax=axes, ticks=range(N_DIGITS), fraction=0.03)
    colorbar.set_label("digit")
    fig.suptitle(title)

    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_training_curves(history: Mapping[str, list[float]], title: str, path: str | Path) -> Path:
    """Save the loss and accuracy per epoch, training and validation, as one PNG.

    Parameters
    ----------
    history : mapping of str to list of float
        Keras history: ``loss``, ``accuracy`` and optionally ``val_loss``, ``val_accuracy``.
    title : str
        Figure title.
    path : str or Path
        PNG file to write.

    Returns
    -------
    Path
        The file written.
    """
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for ax, metric in zip(axes, ("loss", "accuracy")):
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            if key in history:
                epochs = np.arange(1, len(history[key]) + 1)
                ax.plot(epochs, history[key], marker="o", markersize=3, label=label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)

    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
