"""The stages of one job, each a function that main.run_job calls in order.

Each stage takes the config and the previous stage's output and returns plain
values, so a stage can be tested, timed or cached on its own.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from src import faults
from src.cache import StageCache, config_key, library_versions
from src.data import Dataset, load_dataset, split_validation
from src.paths import resolve_path
from src.scoring import validate_k

log = logging.getLogger(__name__)

# Libraries whose versions every run records as tags (``version.numpy``), so a result can be traced
# to the code that made it.
RECORDED_LIBRARIES = (
    "numpy", "scikit-learn", "tensorflow", "tensorflow-cpu", "keras", "openTSNE", "umap-learn",
    "pynndescent", "trimap", "numba", "mlflow", "hydra-core",
)


class StageTimer:
    """Wall seconds per stage, logged at INFO and recorded in MLflow as ``time/<stage>``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        log.info("stage %s: started", name)
        start = time.perf_counter()
        yield
        elapsed = time.perf_counter() - start
        self.seconds[name] = self.seconds.get(name, 0.0) + elapsed
        log.info("stage %s: done in %.1f s", name, elapsed)

    def log_to_mlflow(self) -> None:
        import mlflow

        mlflow.log_metrics({f"time/{name}": seconds for name, seconds in self.seconds.items()})


def prepare_dataset(cfg: DictConfig) -> Dataset:
    """Load the configured dataset and check the rules that need its real size."""
    dataset = load_dataset(cfg.data, seed=cfg.seed)
    validate_k(list(cfg.knn.k), len(dataset.y_train))
    return dataset


def run_name(cfg: DictConfig) -> str:
    """Name a run by what usually differs between jobs, e.g. ``umap · 256-64 · dropout 0.5 · seed 0``."""
    shape = "-".join(str(units) for units in cfg.model.hidden_units)
    return f"{cfg.embedder.name} · {shape} · dropout {cfg.dropout} · seed {cfg.seed}"


def run_tags(cfg: DictConfig) -> dict[str, str]:
    """Return the tags that identify a run: embedder, protocol, dataset and the Hydra job."""
    from hydra.core.hydra_config import HydraConfig

    from src.redact import redact_text
    from src.sweep import read_parent

    tags = {
        "embedder": str(cfg.embedder.name),
        "protocol": str(cfg.embedder.protocol),
        "dataset": str(cfg.data.name),
    }
    if HydraConfig.initialized():
        runtime = HydraConfig.get()
        tags["hydra.overrides"] = redact_text(" ".join(runtime.overrides.task))
        tags["hydra.output_dir"] = str(runtime.runtime.output_dir)
        if runtime.mode.name == "MULTIRUN":
            tags["hydra.job_num"] = str(runtime.job.num)
            tags["sweep_id"] = str(runtime.sweep.dir)
            parent = read_parent(runtime.sweep.dir)
            if parent is not None:
                tags["mlflow.parentRunId"] = parent["run_id"]
    return tags


def log_run_inputs(cfg: DictConfig, dataset: Dataset) -> None:
    """Log the flattened, resolved config as parameters, the config file and the data sizes."""
    import mlflow

    from src.tracking import flatten_params, redact_credentials

    config = OmegaConf.to_container(cfg, resolve=True)
    if config["tracking"]["uri"] is not None:
        config["tracking"]["uri"] = redact_credentials(config["tracking"]["uri"])
    mlflow.log_params(flatten_params(config))
    mlflow.log_params({"data.n_train_used": len(dataset.y_train), "data.n_test_used": len(dataset.y_test)})
    versions = library_versions(*RECORDED_LIBRARIES)
    versions["python"] = platform.python_version()
    mlflow.set_tags({f"version.{name}": version for name, version in versions.items() if version != "not installed"})
    if cfg.tracking.uri is None or str(cfg.tracking.uri).startswith("sqlite"):
        mlflow.log_param("tracking.uri_used", mlflow.get_tracking_uri())
    mlflow.log_text(OmegaConf.to_yaml(OmegaConf.create(config)), "config.yaml")


@dataclass
class TrainedLayers:
    """The trained network's curves, test scores and hidden-layer activations, as the later stages use them."""

    history: dict[str, list[float]]
    test_loss: float
    test_accuracy: float
    layer_names: list[str]
    train: dict[str, np.ndarray]
    test: dict[str, np.ndarray]
    key: str
    # With evolution enabled: activations of the evolution subset of test digits per epoch
    # and layer, and the subset's indices into the test digits.
    snapshots: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    snapshot_subset: np.ndarray | None = None


def training_key_config(cfg: DictConfig) -> dict:
    """Return everything the trained network depends on: data, model, dropout, train and seed."""
    data = OmegaConf.to_container(cfg.data, resolve=True)
    if data.get("path") is not None:
        data["path_fingerprint"] = path_fingerprint(resolve_path(str(data["path"])))
    key = {
        "data": data,
        "model": OmegaConf.to_container(cfg.model, resolve=True),
        "dropout": cfg.dropout,
        "train": OmegaConf.to_container(cfg.train, resolve=True),
        "seed": cfg.seed,
    }
    if evolution_enabled(cfg):
        # Snapshots are recorded during training, so they belong to its entry. Off, the key
        # is unchanged and runs without snapshots share the entry.
        key["evolution"] = {"epochs": list(cfg.evolution.epochs), "n_points": cfg.evolution.n_points}
    return key


def evolution_enabled(cfg: DictConfig) -> bool:
    """Return whether per-epoch snapshots are enabled (an older config has no evolution section)."""
    return bool(OmegaConf.select(cfg, "evolution.enabled", default=False))


def path_fingerprint(path: Path) -> list:
    """Return name, size and modification time of a file, or of every file in a folder."""
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    return [[file.name, file.stat().st_size, file.stat().st_mtime_ns] for file in files if file.is_file()]


def train_and_extract(cfg: DictConfig, dataset: Dataset, cache: StageCache, timer: StageTimer) -> TrainedLayers:
    """Train the MLP and read its activations, or load both from the cache."""
    key_config = training_key_config(cfg)
    versions = library_versions("tensorflow", "tensorflow-cpu", "keras", "numpy", "scikit-learn")

    def compute(folder: Path):
        recorder, subset = snapshot_recorder(cfg, dataset)
        with timer.stage("train"):
            training = train_network(cfg, dataset, callbacks=[recorder] if recorder else [])
        with timer.stage("activations"):
            train, test = extract_layers(training, dataset)
        training.model.save(folder / "model.keras")
        arrays = {f"train.{layer}": train[layer] for layer in training.layer_names}
        arrays.update({f"test.{layer}": test[layer] for layer in training.layer_names})
        meta = {
            "history": training.history,
            "test_loss": training.test_loss,
            "test_accuracy": training.test_accuracy,
            "layer_names": training.layer_names,
        }
        if recorder is not None:
            arrays["snapshot_subset"] = subset
            for epoch, activations in recorder.activations.items():
                arrays.update({f"snapshot.{epoch}.{layer}": value for layer, value in activations.items()})
            meta["snapshot_epochs"] = sorted(recorder.activations)
        return arrays, meta

    entry = cache.get_or_compute("train", key_config, versions, compute)
    meta = entry.meta
    layer_names = list(meta["layer_names"])
    snapshots = {
        int(epoch): {layer: entry.arrays[f"snapshot.{epoch}.{layer}"] for layer in layer_names}
        for epoch in meta.get("snapshot_epochs", [])
    }
    return TrainedLayers(
        history=meta["history"],
        test_loss=meta["test_loss"],
        test_accuracy=meta["test_accuracy"],
        layer_names=layer_names,
        train={"input": dataset.X_train, **{layer: entry.arrays[f"train.{layer}"] for layer in layer_names}},
        test={"input": dataset.X_test, **{layer: entry.arrays[f"test.{layer}"] for layer in layer_names}},
        key=config_key(key_config),
        snapshots=snapshots,
        snapshot_subset=entry.arrays.get("snapshot_subset"),
    )


def snapshot_recorder(cfg: DictConfig, dataset: Dataset):
    """Return the Keras callback that records the evolution subset per epoch, and the subset.

    Returns ``(None, None)`` when evolution is off, so training runs exactly as without it.
    """
    if not evolution_enabled(cfg):
        return None, None
    from src.evolution import activation_recorder, evolution_subset, snapshot_epochs
    from src.model import hidden_layer_names

    epochs = snapshot_epochs(list(cfg.evolution.epochs), cfg.train.epochs)
    subset = evolution_subset(dataset.y_test, cfg.evolution.n_points, cfg.seed)
    layer_names = hidden_layer_names(cfg.model.hidden_units)
    log.info("evolution: recording %d test digits after epochs %s", len(subset), epochs)
    return activation_recorder(dataset.X_test[subset], layer_names, epochs), subset


def train_network(cfg: DictConfig, dataset: Dataset, callbacks=()):
    """Hold out the validation part of the training digits and train the MLP on the rest."""
    from src.model import train_mlp

    X_fit, y_fit, X_val, y_val = split_validation(
        dataset.X_train, dataset.y_train, cfg.data.val_size, seed=cfg.seed
    )
    log.info("training on %d digits, validating on %d", len(y_fit), len(y_val))
    return train_mlp(
        X_fit, y_fit, X_val, y_val, dataset.X_test, dataset.y_test,
        model_cfg=cfg.model, train_cfg=cfg.train, dropout=cfg.dropout, seed=cfg.seed, progress=cfg.progress,
        callbacks=callbacks,
    )


def extract_layers(training, dataset: Dataset) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Return the hidden-layer activations of the training and the test digits."""
    from src.activations import extract_activations

    return extract_activations(training.model, training.layer_names, dataset.X_train, dataset.X_test)


def log_training(layers: TrainedLayers, output_dir: Path) -> None:
    """Log the per-epoch curves, the test scores and the training-curves figure."""
    import mlflow

    from src.plotting import plot_training_curves
    from src.tracking import log_history

    log_history(layers.history)
    mlflow.log_metrics({"test_loss": layers.test_loss, "test_accuracy": layers.test_accuracy})
    path = plot_training_curves(
        layers.history,
        title=f"training curves (test accuracy {layers.test_accuracy:.3f})",
        path=output_dir / "training_curves.png",
    )
    mlflow.log_artifact(str(path))


def map_layers(
    cfg: DictConfig, dataset: Dataset, layers: TrainedLayers, cache: StageCache, output_dir: Path, timer: StageTimer
) -> tuple[pd.DataFrame, dict]:
    """Embed, score and plot the input and every hidden layer.

    Returns
    -------
    table : DataFrame
        One row per layer (``input``, ``hidden_1``, ...), columns ``2d_k<k>`` for the
        map and ``full_k<k>`` for the layer's full space, then, with ``quality.enabled``,
        the map-quality metrics of score_quality().
    embeddings : dict of str to Embedding
        Each layer's map.
    """
    rows, embeddings = {}, {}
    for layer in layers.train:
        with timer.stage(f"embed/{layer}"):
            embeddings[layer] = embed_layer(cfg, layer, layers, cache)
        rows[layer] = score_and_plot(cfg, layer, layers, embeddings[layer], dataset, output_dir, timer)
        if quality_enabled(cfg):
            with timer.stage(f"quality/{layer}"):
                rows[layer].update(score_quality(cfg, layer, layers, embeddings[layer], dataset, cache, rows[layer]))
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "layer"
    return table, embeddings


def quality_enabled(cfg: DictConfig) -> bool:
    """Return whether map-quality metrics are enabled (an older config has no quality section)."""
    return bool(OmegaConf.select(cfg, "quality.enabled", default=False))


def score_quality(cfg, layer, layers, embedding, dataset, cache, knn_row) -> dict[str, float]:
    """Score how faithful one layer's map is, log the metrics and return them for the table.

    Logs ``trustworthiness/<layer>``, ``continuity/<layer>``, ``triplet_acc/<layer>``,
    ``distance_spearman/<layer>``, ``silhouette/<layer>``, ``knn_retention/<layer>/k<k>``
    (2-D over full-space kNN accuracy) and, with ``quality.probe``, ``probe_acc/<layer>``.
    """
    import mlflow

    from src.quality import knn_retention, map_quality, validate_quality_config

    settings = validate_quality_config(OmegaConf.to_container(cfg.quality, resolve=True))
    sampling = {key: settings[key] for key in ("k", "n_points", "n_triplets", "n_pairs")}
    key_config = {
        "training": layers.key,
        "layer": layer,
        "embedder": OmegaConf.to_container(cfg.embedder, resolve=True),
        "seed": cfg.seed,
        "quality": sampling,
    }

    def compute(folder: Path):
        return {}, map_quality(
            layers.train[layer], layers.test[layer], dataset.y_train, dataset.y_test,
            embedding.train, embedding.test, seed=cfg.seed, **sampling,
        )

    start = time.perf_counter()
    versions = library_versions("numpy", "scipy", "scikit-learn")
    entry = cache.get_or_compute("quality", key_config, versions, compute, label=f"quality/{layer}")
    scores = {name: float(value) for name, value in entry.meta.items()}
    for k in cfg.knn.k:
        scores[f"knn_retention_k{k}"] = knn_retention(knn_row[f"2d_k{k}"], knn_row[f"full_k{k}"])
    if settings["probe"]:
        scores["probe_acc"] = probe_layer(cfg, layer, layers, dataset, cache)

    metrics = {}
    for name, value in scores.items():
        if name.startswith("knn_retention_k"):
            metrics[f"knn_retention/{layer}/k{name.removeprefix('knn_retention_k')}"] = value
        else:
            metrics[f"{name}/{layer}"] = value
    mlflow.log_metrics({key: value for key, value in metrics.items() if np.isfinite(value)})
    log.info(
        "%s map quality: trustworthiness %.3f, continuity %.3f, triplet accuracy %.3f, distance Spearman %.3f, "
        "silhouette %.3f%s (%.1f s)",
        layer, scores["trustworthiness"], scores["continuity"], scores["triplet_acc"], scores["distance_spearman"],
        scores["silhouette"], f", linear probe {scores['probe_acc']:.3f}" if "probe_acc" in scores else "",
        time.perf_counter() - start,
    )
    return scores


def probe_layer(cfg: DictConfig, layer: str, layers: TrainedLayers, dataset: Dataset, cache: StageCache) -> float:
    """Return the test accuracy of a linear probe on the layer's activations, or load it from the cache.

    The probe depends on the layer, not on the map, so every job of a sweep over embedders
    reuses the first job's result.
    """
    from src.quality import linear_probe_accuracy

    key_config = {"training": layers.key, "layer": layer, "seed": cfg.seed}
    versions = library_versions("numpy", "scikit-learn")

    def compute(folder: Path):
        accuracy = linear_probe_accuracy(
            layers.train[layer], dataset.y_train, layers.test[layer], dataset.y_test, seed=cfg.seed
        )
        return {}, {"accuracy": accuracy}

    entry = cache.get_or_compute("probe", key_config, versions, compute, label=f"probe/{layer}")
    return float(entry.meta["accuracy"])


def embed_layer(cfg: DictConfig, layer: str, layers: TrainedLayers, cache: StageCache):
    """Embed one layer in 2-D, or load the map from the cache, and record adjusted parameters."""
    import mlflow

    from src.embedding import LIBRARIES, Embedding, embed

    key_config = {
        "training": layers.key,
        "layer": layer,
        "embedder": OmegaConf.to_container(cfg.embedder, resolve=True),
        "seed": cfg.seed,
    }
    versions = library_versions("numpy", *LIBRARIES[cfg.embedder.name])

    def compute(folder: Path):
        faults.reach_soon("embed")
        result = embed(layers.train[layer], layers.test[layer], cfg.embedder, cfg.seed, cfg.progress)
        adjusted = {param: list(values) for param, values in result.adjusted.items()}
        return {"train": result.train, "test": result.test}, {"adjusted": adjusted}

    entry = cache.get_or_compute("embed", key_config, versions, compute, label=f"embed/{layer}")
    adjusted = {param: tuple(values) for param, values in entry.meta["adjusted"].items()}
    for param, (_requested, used) in adjusted.items():
        mlflow.log_param(f"embedder.{param}.used", used)
    return Embedding(train=entry.arrays["train"], test=entry.arrays["test"], adjusted=adjusted)


def score_and_plot(cfg, layer, layers, embedding, dataset, output_dir, timer) -> dict[str, float]:
    """Score one layer's map and full space by kNN accuracy, log the metrics and the scatter PNG."""
    import mlflow

    from src.plotting import plot_layer_embedding
    from src.scoring import knn_accuracy

    ks = list(cfg.knn.k)
    with timer.stage(f"score/{layer}"):
        accuracy_2d = knn_accuracy(embedding.train, dataset.y_train, embedding.test, dataset.y_test, ks)
        accuracy_full = knn_accuracy(layers.train[layer], dataset.y_train, layers.test[layer], dataset.y_test, ks)
    mlflow.log_metrics({f"knn_acc/{layer}/k{k}": accuracy_2d[k] for k in ks})
    mlflow.log_metrics({f"knn_acc_full/{layer}/k{k}": accuracy_full[k] for k in ks})
    summary = ", ".join(f"k={k}: {accuracy_2d[k]:.3f} (full space {accuracy_full[k]:.3f})" for k in ks)
    log.info("%s kNN accuracy %s", layer, summary)

    title = f"{cfg.embedder.name} · {layer} · {cfg.data.name} · test kNN accuracy (k={ks[0]}) {accuracy_2d[ks[0]]:.3f}"
    path = plot_layer_embedding(
        embedding.train, dataset.y_train, embedding.test, dataset.y_test, title, output_dir / f"scatter_{layer}.png"
    )
    mlflow.log_artifact(str(path), artifact_path="scatter")
    faults.reach("artifacts")
    coordinates = output_dir / f"embedding_{layer}.npz"
    np.savez(
        coordinates, train=embedding.train, test=embedding.test, y_train=dataset.y_train, y_test=dataset.y_test
    )
    mlflow.log_artifact(str(coordinates), artifact_path="embeddings")
    return {**{f"2d_k{k}": accuracy_2d[k] for k in ks}, **{f"full_k{k}": accuracy_full[k] for k in ks}}


def follow_training(cfg, dataset, layers, embeddings, cache, output_dir, timer) -> None:
    """Map each hidden layer's per-epoch snapshots, align them, and log curves, a GIF and a PNG.

    For each hidden layer: one map per snapshot epoch with the run's embedder (stage cache
    ``evolution``), the kNN accuracy of each epoch's map as the step metric
    ``evolution_knn/<layer>/k<k>`` (step = epoch), the same score of the run's final map on
    the same digits as ``evolution_knn_final_map/<layer>/k<k>``, an animated GIF (and an MP4
    where ffmpeg is installed) and a small-multiples PNG under the artifact folder ``evolution``.
    """
    import mlflow
    from mlflow.entities import Metric
    from mlflow.utils.time import get_current_time_millis

    from src import evolution

    subset = layers.snapshot_subset
    y_subset = dataset.y_test[subset]
    ks = list(cfg.knn.k)
    folder = output_dir / "evolution"
    folder.mkdir(exist_ok=True)
    run_id = mlflow.active_run().info.run_id
    for layer in layers.layer_names:
        with timer.stage(f"evolution/{layer}"):
            snapshots = {epoch: activations[layer] for epoch, activations in layers.snapshots.items()}
            maps = evolution_maps(cfg, layer, layers, snapshots, cache)
            scores = evolution.per_epoch_knn(maps, y_subset, ks, seed=cfg.seed)
            final = evolution.per_epoch_knn({0: embeddings[layer].test[subset]}, y_subset, ks, seed=cfg.seed)[0]

            now = get_current_time_millis()
            curve = [
                Metric(key=f"evolution_knn/{layer}/k{k}", value=float(by_k[k]), timestamp=now, step=int(epoch))
                for epoch, by_k in scores.items()
                for k in ks
            ]
            mlflow.tracking.MlflowClient().log_batch(run_id, metrics=curve)
            mlflow.log_metrics({f"evolution_knn_final_map/{layer}/k{k}": final[k] for k in ks})

            captions = {epoch: f"kNN {by_k[ks[0]]:.2f}" for epoch, by_k in scores.items()}
            title = f"{cfg.embedder.name} · {layer} · {len(subset)} test digits, aligned maps per epoch"
            paths = [
                evolution.save_animation(maps, y_subset, title, folder / f"evolution_{layer}.gif",
                                         fps=cfg.evolution.fps, captions=captions),
                evolution.save_small_multiples(maps, y_subset, title, folder / f"evolution_{layer}.png",
                                               captions=captions),
                evolution.save_mp4(maps, y_subset, title, folder / f"evolution_{layer}.mp4",
                                   fps=cfg.evolution.fps, captions=captions),
            ]
            for path in paths:
                if path is not None:
                    mlflow.log_artifact(str(path), artifact_path="evolution")
        trend = ", ".join(f"epoch {epoch} {by_k[ks[0]]:.3f}" for epoch, by_k in scores.items())
        log.info("%s evolution, kNN accuracy (k=%d) of the subset's maps: %s; final map %.3f",
                 layer, ks[0], trend, final[ks[0]])


def evolution_maps(cfg, layer, layers, snapshots, cache) -> dict[int, np.ndarray]:
    """Return one layer's aligned per-epoch maps, or load them from the cache."""
    from src.embedding import LIBRARIES
    from src.evolution import aligned_maps

    key_config = {
        "training": layers.key,
        "layer": layer,
        "embedder": OmegaConf.to_container(cfg.embedder, resolve=True),
        "seed": cfg.seed,
    }
    versions = library_versions("numpy", "scipy", *LIBRARIES[cfg.embedder.name])

    def compute(folder: Path):
        result = aligned_maps(snapshots, cfg.embedder, cfg.seed, cfg.progress)
        arrays = {f"aligned.{epoch}": value for epoch, value in result.aligned.items()}
        arrays.update({f"unaligned.{epoch}": value for epoch, value in result.unaligned.items()})
        return arrays, {"epochs": sorted(result.aligned)}

    entry = cache.get_or_compute("evolution", key_config, versions, compute, label=f"evolution/{layer}")
    return {int(epoch): entry.arrays[f"aligned.{epoch}"] for epoch in entry.meta["epochs"]}
