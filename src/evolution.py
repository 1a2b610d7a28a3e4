"""Follow each hidden layer's map through training: snapshots, aligned maps and animations.

A fixed subset of test digits is passed through the network before training (epoch 0) and
after selected epochs. Each layer's snapshots are embedded in 2-D one epoch after the other.
Every map is then rotated, reflected, scaled and shifted onto the map before it. An animation
or a row of panels then shows how the layer's representation changes, not how the embedder
happened to orient each fit. Per-epoch projections of hidden activations come
from Rauber, Fadel, Falcao and Telea, "Visualizing the Hidden Activity of Artificial Neural
Networks", IEEE TVCG 23(1), 2017, doi:10.1109/TVCG.2016.2598838.

Keras, the embedding libraries and matplotlib are imported inside the functions that use
them, so importing this module stays cheap.
"""

from __future__ import annotations

import logging
import math
import numbers
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf

from src.embedding import embed, validate_embedder_config
from src.errors import ConfigError
from src.scoring import knn_accuracy

logger = logging.getLogger(__name__)

# Defaults of the `evolution` config section. The last training epoch is always snapshotted
# as well, whatever `epochs` lists.
DEFAULT_EPOCHS: tuple[int, ...] = (0, 1, 2, 5, 10)
DEFAULT_N_POINTS = 2000
DEFAULT_FPS = 2
EVOLUTION_DEFAULTS: dict[str, object] = {
    "enabled": False,
    "epochs": list(DEFAULT_EPOCHS),
    "n_points": DEFAULT_N_POINTS,
    "fps": DEFAULT_FPS,
}

# Two digits of each class, so that both stratified halves of the subset hold every digit.
MIN_N_POINTS = 20

# GIF stores frame delays in whole hundredths of a second, and many browsers play delays
# below 0.02 s more slowly than stored, so a GIF above 50 frames per second plays unreliably.
MAX_FPS = 50

# Constructor parameter that starts each embedder from given coordinates. PCA has none, and
# trimap 1.1.5 raises ValueError when given one (see aligned_maps).
_INIT_PARAM: dict[str, str] = {"tsne": "initialization", "umap": "init"}

# openTSNE 1.0.4 warns that an initial map with a standard deviation above 1e-2 may converge
# poorly, and scales its own PCA initialisation to 1e-4.
_TSNE_INIT_STD = 1e-4

N_DIGITS = 10
_MAX_COLUMNS = 5


def _is_whole(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _as_container(section: object) -> object:
    if isinstance(section, (DictConfig, ListConfig)):
        return OmegaConf.to_container(section, resolve=True)
    return section


def validate_evolution_config(section: Mapping) -> None:
    """Raise ConfigError unless the ``evolution`` config section is usable.

    Keys missing from the section take their value from `EVOLUTION_DEFAULTS`. The section is
    checked whether or not it is enabled, so a typo fails before any training.

    Parameters
    ----------
    section : Mapping
        ``enabled`` (bool), ``epochs`` (non-empty list of whole numbers >= 0, 0 meaning
        before training), ``n_points`` (whole number >= `MIN_N_POINTS`) and ``fps``
        (frames per second of the animation, in (0, `MAX_FPS`]).

    Raises
    ------
    ConfigError
        On the first rule that the section breaks, naming the key, the rule, the value
        received and the fix.
    """
    config = _as_container(section)
    if not isinstance(config, Mapping):
        raise ConfigError(
            f"evolution must be a mapping with keys {', '.join(EVOLUTION_DEFAULTS)}; got {config!r}"
        )
    unknown = sorted(set(config) - set(EVOLUTION_DEFAULTS))
    if unknown:
        raise ConfigError(
            f"evolution.{unknown[0]} is not a setting of evolution; got {config[unknown[0]]!r}. "
            f"Remove it, or use one of: {', '.join(EVOLUTION_DEFAULTS)}."
        )
    values = {**EVOLUTION_DEFAULTS, **config}

    if not isinstance(values["enabled"], bool):
        raise ConfigError(
            f"evolution.enabled must be true or false; got {values['enabled']!r}. "
            "Set e.g. `evolution.enabled=true`."
        )
    _check_epochs(values["epochs"])
    n_points = values["n_points"]
    if not _is_whole(n_points) or n_points < MIN_N_POINTS:
        raise ConfigError(
            f"evolution.n_points must be a whole number >= {MIN_N_POINTS}; got {n_points!r}. "
            f"Set e.g. `evolution.n_points={DEFAULT_N_POINTS}`."
        )
    fps = values["fps"]
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not 0 < fps <= MAX_FPS:
        raise ConfigError(
            f"evolution.fps must be a number in (0, {MAX_FPS}]; got {fps!r}. "
            f"Set e.g. `evolution.fps={DEFAULT_FPS}`."
        )


def _check_epochs(epochs: object) -> None:
    epochs = _as_container(epochs)
    is_list = isinstance(epochs, Sequence) and not isinstance(epochs, (str, bytes))
    if not is_list or len(epochs) == 0 or not all(_is_whole(e) and e >= 0 for e in epochs):
        raise ConfigError(
            "evolution.epochs must be a non-empty list of whole numbers >= 0 (0 is before "
            f"training); got {epochs!r}. Set e.g. `evolution.epochs=[0,1,2,5,10]`."
        )


def snapshot_epochs(requested: Sequence[int], epochs: int) -> list[int]:
    """Return the epochs to snapshot: the requested ones that the run reaches, and the last.

    Epoch 0 is the untrained network, and epoch e the network after e epochs of training.

    Parameters
    ----------
    requested : sequence of int
        The ``evolution.epochs`` config value, whole numbers >= 0, in any order.
    epochs : int
        Number of training epochs of the run, ``train.epochs``, >= 1.

    Returns
    -------
    list of int
        Sorted, without duplicates, and always ending with ``epochs``. Requested epochs
        above ``epochs`` are dropped with a WARNING.

    Raises
    ------
    ConfigError
        If ``requested`` breaks the rule of validate_evolution_config().
    ValueError
        If ``epochs`` is not a whole number >= 1.
    """
    _check_epochs(requested)
    if not _is_whole(epochs) or epochs < 1:
        raise ValueError(f"epochs must be a whole number >= 1; got {epochs!r}")
    requested = [int(e) for e in _as_container(requested)]
    late = sorted({e for e in requested if e > epochs})
    reached = sorted({e for e in requested if e <= epochs} | {int(epochs)})
    if late:
        logger.warning(
            "evolution.epochs %s exceed train.epochs=%d; snapshotting epochs %s",
            late, epochs, reached,
        )
    return reached


def activation_recorder(
    X: np.ndarray,
    layer_names: Sequence[str],
    epochs: Sequence[int],
    batch_size: int = 1024,
):
    """Build a Keras callback that records the named layers' activations at given epochs.

    Pass it in ``model.fit(..., callbacks=[recorder])``. Epoch 0 is recorded in
    ``on_train_begin``, before the first weight update, and epoch e (e >= 1) in
    ``on_epoch_end`` of Keras epoch index e - 1. Each recording is one inference-mode pass
    (dropout off) of ``X`` through the network, in batches, with
    src.activations.extract_activations().

    Parameters
    ----------
    X : ndarray of shape (n_points, n_features)
        The fixed points to record, e.g. the test digits chosen by evolution_subset().
    layer_names : sequence of str
        Layers to read, e.g. ``["hidden_1", "hidden_2"]``.
    epochs : sequence of int
        Epochs to record, e.g. the output of snapshot_epochs().
    batch_size : int, default=1024
        Points per forward pass.

    Returns
    -------
    keras.callbacks.Callback
        An ``ActivationRecorder`` whose ``activations`` attribute maps each recorded epoch
        to a dict of layer name to a float32 array of shape (n_points, n_units), and whose
        ``epochs`` attribute lists the epochs requested.

    Notes
    -----
    Epoch numbers count from the start of this ``fit`` call, so epoch 0 is "before
    training" only for a network that has not been fitted before. Epochs that training
    never reaches, for example after an early stop, are missing from ``activations``.
    """
    import keras

    from src.activations import extract_activations

    X = np.asarray(X, dtype=np.float32)
    names = list(layer_names)
    epochs_to_record = sorted({int(e) for e in epochs})

    class ActivationRecorder(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs = epochs_to_record
            self.activations: dict[int, dict[str, np.ndarray]] = {}

        def on_train_begin(self, logs=None):
            if 0 in self.epochs:
                self._record(0)

        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 in self.epochs:
                self._record(epoch + 1)

        def _record(self, epoch: int) -> None:
            (activations,) = extract_activations(self.model, names, X, batch_size=batch_size)
            self.activations[epoch] = {name: activations[name] for name in names}
            logger.info("recorded the activations of %d points after epoch %d", len(X), epoch)

    return ActivationRecorder()


def evolution_subset(y: np.ndarray, n: int = DEFAULT_N_POINTS, seed: int = 0) -> np.ndarray:
    """Choose a fixed, stratified subset of points to follow through training.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Labels of the candidate points, e.g. the test digits.
    n : int, default=2000
        Number of points, the ``evolution.n_points`` config value. When it is not smaller
        than ``len(y)``, every point is used and a WARNING is logged.
    seed : int, default=0
        Seed of the draw. The same seed gives the same points for every layer and epoch.

    Returns
    -------
    ndarray of shape (min(n, n_samples),), int
        Sorted indices into ``y``, with each label's share as in ``y`` up to rounding.
    """
    from sklearn.model_selection import train_test_split

    y = np.asarray(y)
    if n >= len(y):
        logger.warning(
            "evolution.n_points=%d is not smaller than the %d points available; using all %d",
            n, len(y), len(y),
        )
        return np.arange(len(y))
    chosen, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=seed)
    return np.sort(chosen)


def knn_split(y: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split the subset into two stratified halves: kNN neighbours and kNN queries.

    Returns
    -------
    fit_index, score_index : ndarray of int
        Sorted indices into ``y``. ``score_index`` has the extra point when ``len(y)`` is odd.
    """
    from sklearn.model_selection import train_test_split

    fit_index, score_index = train_test_split(
        np.arange(len(y)), test_size=0.5, stratify=np.asarray(y), random_state=seed
    )
    return np.sort(fit_index), np.sort(score_index)


def per_epoch_knn(
    maps: Mapping[int, np.ndarray],
    y: np.ndarray,
    k: Sequence[int],
    seed: int = 0,
) -> dict[int, dict[int, float]]:
    """Score each epoch's map by kNN accuracy, one half of the subset against the other.

    Every map contains all points of the subset (the transductive protocol), so the points
    of one stratified half from knn_split() are classified by their k nearest points of the
    other half. The halves are the same for every epoch.

    Parameters
    ----------
    maps : mapping of int to ndarray of shape (n_points, 2)
        One map per epoch, e.g. ``LayerEvolution.aligned``. Scores do not depend on the
        alignment, which moves every point by the same similarity transform.
    y : ndarray of shape (n_points,)
        Labels of the points.
    k : sequence of int
        Neighbour counts, each in [1, n_points // 2).
    seed : int, default=0
        Seed of the split into halves.

    Returns
    -------
    dict of int to dict of int to float
        Accuracy in [0, 1] per epoch, then per k.

    Raises
    ------
    ConfigError
        If a k is not smaller than the number of points in the neighbour half.
    """
    y = np.asarray(y)
    fit_index, score_index = knn_split(y, seed)
    scores = {}
    for epoch in sorted(maps):
        coordinates = np.asarray(maps[epoch])
        scores[epoch] = knn_accuracy(
            coordinates[fit_index], y[fit_index], coordinates[score_index], y[score_index], k
        )
    return scores


def _centred(points: object, name: str) -> tuple[np.ndarray, np.ndarray, float]:
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_points, n_components); got shape {points.shape}")
    centre = points.mean(axis=0)
    centred = points - centre
    norm = float(np.linalg.norm(centred))
    if norm == 0:
        raise ValueError(f"{name} cannot be aligned because all of its {len(points)} points coincide")
    return centred, centre, norm


def procrustes_align(moving: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Rotate, reflect, scale and shift one map onto another with the same points.

    The rotation (or reflection) is the orthogonal matrix that minimises the squared
    distances between matching points after both maps are centred. The scale makes the
    aligned map's spread about its centre (the Frobenius norm) equal to the reference's,
    and the centre moves onto the reference's centre.

    Parameters
    ----------
    moving : ndarray of shape (n_points, n_components)
        The map to transform.
    reference : ndarray of shape (n_points, n_components)
        The map to align to; row i is the same point as row i of ``moving``.

    Returns
    -------
    ndarray of shape (n_points, n_components), float32
        ``moving`` after the transform.

    Raises
    ------
    ValueError
        If the shapes differ or all points of either map coincide.

    Notes
    -----
    The least-squares scale (the one scipy.spatial.procrustes implies) shrinks a map that
    agrees poorly with the reference, so frames would shrink whenever a layer changes a lot.
    Matching the spread keeps every frame the size of the first map.
    """
    from scipy.linalg import orthogonal_procrustes

    moving_centred, _, moving_norm = _centred(moving, "moving")
    reference_centred, reference_centre, reference_norm = _centred(reference, "reference")
    if moving_centred.shape != reference_centred.shape:
        raise ValueError(
            f"moving and reference must have the same shape; got {moving_centred.shape} and "
            f"{reference_centred.shape}"
        )
    rotation, _ = orthogonal_procrustes(moving_centred, reference_centred)
    aligned = moving_centred @ rotation * (reference_norm / moving_norm) + reference_centre
    return aligned.astype(np.float32)


def procrustes_disparity(a: np.ndarray, b: np.ndarray) -> float:
    """Compute the Procrustes disparity of two maps of the same points, in [0, 1].

    Both maps are centred and scaled to unit Frobenius norm, and ``b`` is rotated, reflected
    and scaled onto ``a`` by least squares (scipy.spatial.procrustes). The disparity is the
    sum of squared distances between matching points that remains. 0 means the maps are
    equal up to a similarity transform, and swapping the two maps gives the same value.

    Parameters
    ----------
    a, b : ndarray of shape (n_points, n_components)
        Two maps; row i of each is the same point.

    Returns
    -------
    float
        The disparity.
    """
    from scipy.spatial import procrustes

    _, _, disparity = procrustes(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    return float(disparity)


@dataclass(frozen=True)
class LayerEvolution:
    """One layer's maps at each snapshot epoch, as fitted and after alignment.

    Attributes
    ----------
    aligned : dict of int to ndarray of shape (n_points, 2), float32
        Each epoch's map aligned onto the aligned map of the epoch before, by
        procrustes_align(). The first epoch's map is kept as fitted.
    unaligned : dict of int to ndarray of shape (n_points, 2), float32
        The embedder's output for each epoch.
    initialised_from_previous : bool
        Whether each fit after the first started from the previous fit's output.
    adjusted : dict of str to (requested, used)
        Library parameters that embed() lowered to fit the number of points.
    """

    aligned: dict[int, np.ndarray]
    unaligned: dict[int, np.ndarray]
    initialised_from_previous: bool
    adjusted: dict[str, tuple[object, object]] = field(default_factory=dict)


def aligned_maps(
    snapshots: Mapping[int, np.ndarray],
    embedder_cfg: Mapping,
    seed: int,
    progress: bool = False,
) -> LayerEvolution:
    """Embed one layer's snapshots in 2-D, epoch by epoch, and align each map to the last.

    Epochs are fitted in increasing order, each with src.embedding.embed() on all points of
    the snapshot. openTSNE and UMAP start each fit after the first from the previous fit's
    output. PCA has no starting map, and TriMAP's cannot be set (see Notes), so there only
    the alignment links consecutive maps.

    Parameters
    ----------
    snapshots : mapping of int to ndarray of shape (n_points, n_units)
        One layer's activations per epoch, the same points in the same order, e.g.
        ``{epoch: recorder.activations[epoch]["hidden_1"] for epoch in recorder.activations}``.
    embedder_cfg : Mapping
        The ``embedder`` config group. ``protocol`` makes no difference here, because every
        map is fitted on all its points and no points are placed afterwards.
    seed : int
        ``random_state`` of every fit.
    progress : bool, default=False
        Passed to embed().

    Returns
    -------
    LayerEvolution

    Raises
    ------
    ConfigError, DataError
        As embed() raises them.
    ValueError
        If ``snapshots`` is empty or its arrays differ in number of points.

    Notes
    -----
    trimap 1.1.5 accepts ``fit_transform(X, init=array)`` but then evaluates
    ``init == "random"`` and ``not init`` on the array, which raises ValueError ("truth
    value of an array ... is ambiguous"), so TriMAP maps always start from its own PCA
    initialisation. For openTSNE the previous map is rescaled to a standard deviation of
    1e-4 first, and with the config's early exaggeration phase t-SNE can still rearrange
    clusters. Set ``embedder.early_exaggeration_iter=0`` to keep more of the previous layout.
    """
    epochs = sorted(snapshots)
    if not epochs:
        raise ValueError("snapshots must contain at least one epoch; got none")
    sizes = {epoch: len(snapshots[epoch]) for epoch in epochs}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"every snapshot must contain the same points; got point counts {sizes}")
    config = dict(_as_container(embedder_cfg))
    validate_embedder_config(config)
    name = config["name"]
    if name == "trimap":
        logger.info("trimap 1.1.5 cannot start a fit from a given map, so only the alignment links TriMAP's maps")

    start = time.perf_counter()
    unaligned, aligned, adjusted = {}, {}, {}
    previous_epoch = None
    for epoch in epochs:
        params = dict(config)
        if previous_epoch is not None:
            params.update(_initial_map_params(name, unaligned[previous_epoch]))
        X = np.asarray(snapshots[epoch])
        result = embed(X, X[:0], params, seed, progress)
        unaligned[epoch] = result.train
        adjusted.update(result.adjusted)
        if previous_epoch is None:
            aligned[epoch] = result.train
        else:
            aligned[epoch] = procrustes_align(result.train, aligned[previous_epoch])
        previous_epoch = epoch

    logger.info(
        "embedded and aligned %d snapshots with %s in %.1f s",
        len(epochs), name, time.perf_counter() - start,
    )
    return LayerEvolution(
        aligned=aligned,
        unaligned=unaligned,
        initialised_from_previous=name in _INIT_PARAM and len(epochs) > 1,
        adjusted=adjusted,
    )


def _initial_map_params(name: str, previous: np.ndarray) -> dict[str, np.ndarray]:
    """Return the constructor argument that starts a fit from ``previous``, if there is one."""
    if name == "tsne":
        from openTSNE.initialization import rescale

        return {"initialization": rescale(previous, target_std=_TSNE_INIT_STD)}
    if name == "umap":
        # umap-learn 0.5.12 rescales an initial map to [0, 10] per axis itself.
        return {"init": np.asarray(previous, dtype=np.float32)}
    return {}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _digit_colours(plt):
    """Return the colormap and norm of src.plotting: one tab10 colour per digit."""
    from matplotlib.colors import BoundaryNorm, ListedColormap

    cmap = ListedColormap(plt.get_cmap("tab10").colors[:N_DIGITS])
    return cmap, BoundaryNorm(np.arange(-0.5, N_DIGITS), cmap.N)


def _check_frames(maps_by_epoch: Mapping[int, np.ndarray], y: np.ndarray) -> list[int]:
    epochs = sorted(maps_by_epoch)
    if not epochs:
        raise ValueError("maps_by_epoch must contain at least one epoch; got none")
    for epoch in epochs:
        shape = np.shape(maps_by_epoch[epoch])
        if shape != (len(y), 2):
            raise ValueError(
                f"every map must have shape (n_points, 2) with n_points = len(y) = {len(y)}; "
                f"got shape {shape} at epoch {epoch}"
            )
    return epochs


def _shared_limits(maps_by_epoch: Mapping[int, np.ndarray]) -> tuple[tuple[float, float], tuple[float, float]]:
    """Return x and y limits that contain every map, with a 3 % margin."""
    points = np.vstack([np.asarray(m) for m in maps_by_epoch.values()])
    low, high = points.min(axis=0), points.max(axis=0)
    pad = 0.03 * np.maximum(high - low, 1e-12)
    return (low[0] - pad[0], high[0] + pad[0]), (low[1] - pad[1], high[1] + pad[1])


def _marker_size(n_points: int) -> float:
    return 4 if n_points > 2000 else 8


def _epoch_label(epoch: int, captions: Mapping[int, str] | None) -> str:
    label = "epoch 0 (before training)" if epoch == 0 else f"epoch {epoch}"
    if captions and epoch in captions:
        label = f"{label} · {captions[epoch]}"
    return label


def plot_small_multiples(
    maps_by_epoch: Mapping[int, np.ndarray],
    y: np.ndarray,
    title: str,
    captions: Mapping[int, str] | None = None,
):
    """Draw one panel per epoch, all with the same axis limits, and return the figure.

    Parameters
    ----------
    maps_by_epoch : mapping of int to ndarray of shape (n_points, 2)
        Aligned maps, e.g. ``LayerEvolution.aligned``. Panels run in epoch order, at most
        five per row, spread evenly over the rows (six panels make two rows of three).
    y : ndarray of shape (n_points,)
        Digit labels, 0-9.
    title : str
        Figure title, e.g. embedder and layer.
    captions : mapping of int to str, optional
        Text appended to an epoch's panel title, e.g. ``{5: "kNN 0.91"}``.

    Returns
    -------
    matplotlib.figure.Figure
        Open. The caller saves and closes it, as save_small_multiples() does.
    """
    plt = _pyplot()
    y = np.asarray(y)
    epochs = _check_frames(maps_by_epoch, y)
    cmap, norm = _digit_colours(plt)
    xlim, ylim = _shared_limits(maps_by_epoch)

    # As few rows as five panels a row allow, then the panels spread evenly over them.
    n_rows = math.ceil(len(epochs) / _MAX_COLUMNS)
    n_columns = math.ceil(len(epochs) / n_rows)
    fig, axes = plt.subplots(
        n_rows, n_columns, figsize=(2.8 * n_columns + 0.9, 2.8 * n_rows + 0.6),
        squeeze=False, constrained_layout=True,
    )
    panels = list(axes.flat[: len(epochs)])
    for ax, epoch in zip(panels, epochs):
        points = np.asarray(maps_by_epoch[epoch])
        scatter = ax.scatter(
            points[:, 0], points[:, 1], c=y, cmap=cmap, norm=norm, s=_marker_size(len(y)) / 2, linewidths=0
        )
        ax.set_title(_epoch_label(epoch, captions), fontsize="small")
        ax.set_xlim(xlim)
        ax.set_ylim(ylim)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.flat[len(epochs):]:
        fig.delaxes(ax)
    colorbar = fig.colorbar(scatter, ax=panels, ticks=range(N_DIGITS), fraction=0.03)
    colorbar.set_label("digit")
    fig.suptitle(title)
    return fig


def save_small_multiples(
    maps_by_epoch: Mapping[int, np.ndarray],
    y: np.ndarray,
    title: str,
    path_png: str | Path,
    captions: Mapping[int, str] | None = None,
) -> Path:
    """Save plot_small_multiples() as a PNG and close the figure.

    Parameters are those of plot_small_multiples(), and ``path_png`` is the file to write.

    Returns
    -------
    Path
        The file written.
    """
    plt = _pyplot()
    fig = plot_small_multiples(maps_by_epoch, y, title, captions)
    path = Path(path_png)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def _animate(maps_by_epoch, y, title, captions):
    """Build a FuncAnimation with one frame per epoch, in epoch order."""
    plt = _pyplot()
    from matplotlib.animation import FuncAnimation

    y = np.asarray(y)
    epochs = _check_frames(maps_by_epoch, y)
    cmap, norm = _digit_colours(plt)
    xlim, ylim = _shared_limits(maps_by_epoch)

    fig, ax = plt.subplots(figsize=(6.4, 5.6), constrained_layout=True)
    first = np.asarray(maps_by_epoch[epochs[0]])
    scatter = ax.scatter(first[:, 0], first[:, 1], c=y, cmap=cmap, norm=norm, s=_marker_size(len(y)), linewidths=0)
    # Fixed limits, so movement between frames is movement of the points, not of the axes.
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)
    ax.set_xticks([])
    ax.set_yticks([])
    label = ax.set_title(_epoch_label(epochs[0], captions))
    colorbar = fig.colorbar(scatter, ax=ax, ticks=range(N_DIGITS), fraction=0.04)
    colorbar.set_label("digit")
    fig.suptitle(title)

    def draw(epoch):
        scatter.set_offsets(np.asarray(maps_by_epoch[epoch]))
        label.set_text(_epoch_label(epoch, captions))
        return scatter, label

    animation = FuncAnimation(fig, draw, frames=epochs, blit=False, repeat=False)
    return fig, animation


def save_animation(
    maps_by_epoch: Mapping[int, np.ndarray],
    y: np.ndarray,
    title: str,
    path_gif: str | Path,
    fps: float = DEFAULT_FPS,
    captions: Mapping[int, str] | None = None,
) -> Path:
    """Save the maps as an animated GIF, one frame per epoch, and close the figure.

    Parameters
    ----------
    maps_by_epoch : mapping of int to ndarray of shape (n_points, 2)
        Aligned maps, e.g. ``LayerEvolution.aligned``. Frames run in epoch order, with the
        same axis limits and digit colours in every frame.
    y : ndarray of shape (n_points,)
        Digit labels, 0-9.
    title : str
        Figure title, e.g. embedder and layer.
    path_gif : str or Path
        GIF file to write.
    fps : float, default=2
        Frames per second, the ``evolution.fps`` config value.
    captions : mapping of int to str, optional
        Text appended to an epoch's frame label, e.g. ``{5: "kNN 0.91"}``.

    Returns
    -------
    Path
        The file written.
    """
    from matplotlib.animation import PillowWriter

    return _write_animation(maps_by_epoch, y, title, captions, Path(path_gif), PillowWriter(fps=fps))


def _write_animation(maps_by_epoch, y, title, captions, path: Path, writer) -> Path:
    """Draw the frames, write them with a matplotlib animation writer and close the figure."""
    plt = _pyplot()
    fig, animation = _animate(maps_by_epoch, y, title, captions)
    try:
        animation.save(path, writer=writer, dpi=100)
    finally:
        plt.close(fig)
    return path


def save_mp4(
    maps_by_epoch: Mapping[int, np.ndarray],
    y: np.ndarray,
    title: str,
    path_mp4: str | Path,
    fps: float = DEFAULT_FPS,
    captions: Mapping[int, str] | None = None,
) -> Path | None:
    """Save the animation of save_animation() as an MP4 video when ffmpeg is installed.

    Parameters are those of save_animation(), and ``path_mp4`` is the file to write.

    Returns
    -------
    Path or None
        The file written, or None without writing anything when matplotlib finds no
        ``ffmpeg`` executable.
    """
    _pyplot()  # selects the Agg backend before matplotlib.animation is imported
    from matplotlib.animation import FFMpegWriter, writers

    if not writers.is_available("ffmpeg"):
        logger.info(
            "ffmpeg was not found, so %s was not written. Install ffmpeg for MP4 output, or use the GIF.",
            path_mp4,
        )
        return None
    return _write_animation(maps_by_epoch, y, title, captions, Path(path_mp4), FFMpegWriter(fps=fps))
