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
from dataclasses import dataclass
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

    from src.sweep import read_parent

    tags = {
        "embedder": str(cfg.embedder.name),
        "protocol": str(cfg.embedder.protocol),
        "dataset": str(cfg.data.name),
    }
    if HydraConfig.initialized():
        runtime = HydraConfig.get()
        tags["hydra.overrides"] = " ".join(runtime.overrides.task)
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


def training_key_config(cfg: DictConfig) -> dict:
    """Return everything the trained network depends on: data, model, dropout, train and seed."""
    data = OmegaConf.to_container(cfg.data, resolve=True)
    if data.get("path") is not None:
        data["path_fingerprint"] = path_fingerprint(resolve_path(str(data["path"])))
    return {
        "data": data,
        "model": OmegaConf.to_container(cfg.model, resolve=True),
        "dropout": cfg.dropout,
        "train": OmegaConf.to_container(cfg.train, resolve=True),
        "seed": cfg.seed,
    }


def path_fingerprint(path: Path) -> list:
    """Return name, size and modification time of a file, or of every file in a folder."""
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    return [[file.name, file.stat().st_size, file.stat().st_mtime_ns] for file in files if file.is_file()]


def train_and_extract(cfg: DictConfig, dataset: Dataset, cache: StageCache, timer: StageTimer) -> TrainedLayers:
    """Train the MLP and read its activations, or load both from the cache."""
    key_config = training_key_config(cfg)
    versions = library_versions("tensorflow", "tensorflow-cpu", "keras", "numpy", "scikit-learn")

    def compute(folder: Path):
        with timer.stage("train"):
            training = train_network(cfg, dataset)
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
        return arrays, meta

    entry = cache.get_or_compute("train", key_config, versions, compute)
    meta = entry.meta
    layer_names = list(meta["layer_names"])
    return TrainedLayers(
        history=meta["history"],
        test_loss=meta["test_loss"],
        test_accuracy=meta["test_accuracy"],
        layer_names=layer_names,
        train={"input": dataset.X_train, **{layer: entry.arrays[f"train.{layer}"] for layer in layer_names}},
        test={"input": dataset.X_test, **{layer: entry.arrays[f"test.{layer}"] for layer in layer_names}},
        key=config_key(key_config),
    )


def train_network(cfg: DictConfig, dataset: Dataset):
    """Hold out the validation part of the training digits and train the MLP on the rest."""
    from src.model import train_mlp

    X_fit, y_fit, X_val, y_val = split_validation(
        dataset.X_train, dataset.y_train, cfg.data.val_size, seed=cfg.seed
    )
    log.info("training on %d digits, validating on %d", len(y_fit), len(y_val))
    return train_mlp(
        X_fit, y_fit, X_val, y_val, dataset.X_test, dataset.y_test,
        model_cfg=cfg.model, train_cfg=cfg.train, dropout=cfg.dropout, seed=cfg.seed, progress=cfg.progress,
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
) -> pd.DataFrame:
    """Embed, score and plot the input and every hidden layer.

    Returns
    -------
    DataFrame
        One row per layer (``input``, ``hidden_1``, ...), columns ``2d_k<k>`` for the
        map and ``full_k<k>`` for the layer's full space.
    """
    rows = {}
    for layer in layers.train:
        with timer.stage(f"embed/{layer}"):
            embedding = embed_layer(cfg, layer, layers, cache)
        rows[layer] = score_and_plot(cfg, layer, layers, embedding, dataset, output_dir, timer)
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "layer"
    return table


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
