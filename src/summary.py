"""Sweep summaries read back from MLflow: an accuracy table, a heatmap and a scatter grid.

Used by the sweep callback at the end of each job and by ``python -m src.compare``. Only
MLflow is read, so any store works, and sweeps made before this module existed too.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock

from src.redact import redact_text

log = logging.getLogger(__name__)

OUTCOMES_FILE = "job_outcomes.json"
_METRIC = re.compile(r"^knn_acc/(?P<layer>[^/]+)/k(?P<k>\d+)$")


def accuracy_table(runs) -> pd.DataFrame:
    """Return one row per (run, layer, k) with the 2-D and the full-space kNN accuracy.

    Parameters
    ----------
    runs : list of mlflow.entities.Run
        Runs made by this harness.

    Returns
    -------
    DataFrame
        Columns ``run_id``, ``run_name``, ``embedder``, ``layer``, ``k``, ``knn_acc``,
        ``knn_acc_full``, in the order of ``runs`` and of the layers.
    """
    rows = []
    for run in runs:
        metrics = run.data.metrics
        for key, value in metrics.items():
            match = _METRIC.match(key)
            if not match:
                continue
            layer, k = match["layer"], int(match["k"])
            rows.append(
                {
                    "run_id": run.info.run_id,
                    "run_name": run.info.run_name,
                    "embedder": run.data.tags.get("embedder", "?"),
                    "layer": layer,
                    "k": k,
                    "knn_acc": value,
                    "knn_acc_full": metrics.get(f"knn_acc_full/{layer}/k{k}", np.nan),
                }
            )
    columns = ["run_id", "run_name", "embedder", "layer", "k", "knn_acc", "knn_acc_full"]
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["run_name", "layer", "k"], key=_layer_order).reset_index(drop=True)


def _layer_order(column: pd.Series) -> pd.Series:
    """Sort ``input`` before ``hidden_1``, ``hidden_2``, ... and ``hidden_10`` after ``hidden_9``."""
    if column.name != "layer":
        return column
    return column.map(lambda layer: -1 if layer == "input" else int(layer.rsplit("_", 1)[-1]))


def wide_table(table: pd.DataFrame) -> pd.DataFrame:
    """Pivot to one row per (run, layer) and one column per k: the table people read."""
    wide = table.pivot_table(index=["run_name", "layer"], columns="k", values="knn_acc", sort=False)
    wide.columns = [f"k={k}" for k in wide.columns]
    return wide


def markdown_table(wide: pd.DataFrame) -> str:
    """Format the wide table as a Markdown table with three decimals."""
    header = ["run", "layer", *wide.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for (run_name, layer), values in wide.iterrows():
        cells = [run_name, layer, *(f"{value:.3f}" for value in values)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_heatmap(table: pd.DataFrame, k: int, path: Path) -> Path:
    """Save a layers x runs heatmap of the 2-D kNN accuracy at one k."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = table[table.k == k].pivot_table(index="layer", columns="run_name", values="knn_acc", sort=False)
    fig, ax = plt.subplots(figsize=(2 + 1.6 * grid.shape[1], 1 + 0.6 * grid.shape[0]), constrained_layout=True)
    image = ax.imshow(grid.to_numpy(), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=30, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(grid.shape[0]), grid.index)
    for (row, column), value in np.ndenumerate(grid.to_numpy()):
        ax.text(column, row, f"{value:.3f}", ha="center", va="center", color="white" if value < 0.6 else "black")
    fig.colorbar(image, ax=ax, label=f"kNN accuracy, k={k}")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_scatter_grid(client, runs, table: pd.DataFrame, k: int, path: Path) -> Path | None:
    """Save one figure with the test-digit map of every (run, layer), titled with its accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = list(dict.fromkeys(table.layer))
    if not runs or not layers:
        return None
    fig, axes = plt.subplots(
        len(runs), len(layers), figsize=(3.2 * len(layers), 3.2 * len(runs)), squeeze=False, constrained_layout=True
    )
    # One progress bar per downloaded file would flood the log.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory(prefix="layer-maps-grid-") as folder:
        for row, run in enumerate(runs):
            for column, layer in enumerate(layers):
                ax = axes[row, column]
                ax.set_xticks([])
                ax.set_yticks([])
                try:
                    local = client.download_artifacts(run.info.run_id, f"embeddings/embedding_{layer}.npz", folder)
                except Exception:  # noqa: BLE001 - runs made before coordinates were logged have none.
                    ax.set_title(f"{run.info.run_name}\n{layer}: no coordinates", fontsize=8)
                    continue
                with np.load(local, allow_pickle=False) as stored:
                    test, labels = stored["test"], stored["y_test"]
                ax.scatter(test[:, 0], test[:, 1], c=labels, cmap="tab10", vmin=-0.5, vmax=9.5, s=3, linewidths=0)
                accuracy = run.data.metrics.get(f"knn_acc/{layer}/k{k}", np.nan)
                ax.set_title(f"{run.info.run_name}\n{layer}: kNN acc (k={k}) {accuracy:.3f}", fontsize=8)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# Map-quality metrics, logged per layer as ``<name>/<layer>``, in the order the summary shows them.
QUALITY_METRICS = ("trustworthiness", "continuity", "triplet_acc", "distance_spearman", "silhouette", "probe_acc")


def quality_table(runs) -> pd.DataFrame:
    """Return one row per (run, layer) with the map-quality metrics the run logged.

    Returns
    -------
    DataFrame
        Columns ``run_name``, ``embedder``, ``layer`` and one per name in `QUALITY_METRICS`
        (NaN where a run did not log it). Empty when no run logged any.
    """
    rows = {}
    for run in runs:
        for key, value in run.data.metrics.items():
            name, _, layer = key.partition("/")
            if name in QUALITY_METRICS and layer and "/" not in layer:
                row = rows.setdefault(
                    (run.info.run_id, layer),
                    {"run_name": run.info.run_name, "embedder": run.data.tags.get("embedder", "?"), "layer": layer},
                )
                row[name] = value
    columns = ["run_name", "embedder", "layer", *QUALITY_METRICS]
    table = pd.DataFrame(list(rows.values()), columns=columns)
    return table.sort_values(["run_name", "layer"], key=_layer_order).reset_index(drop=True)


def plot_quality_heatmaps(table: pd.DataFrame, path: Path) -> Path:
    """Save one layers x runs heatmap per map-quality metric, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [name for name in QUALITY_METRICS if table[name].notna().any()]
    n_runs = table.run_name.nunique()
    n_layers = table.layer.nunique()
    n_columns = min(3, len(metrics))
    n_rows = -(-len(metrics) // n_columns)
    fig, axes = plt.subplots(
        n_rows, n_columns, figsize=(n_columns * (1.5 + 1.1 * n_runs), n_rows * (2.2 + 0.5 * n_layers)),
        squeeze=False, constrained_layout=True,
    )
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, metrics):
        grid = table.pivot_table(index="layer", columns="run_name", values=name, sort=False)
        # Silhouette and the distance correlation can be negative; the others lie in [0, 1].
        low = -1 if name in ("silhouette", "distance_spearman") else 0
        ax.imshow(grid.to_numpy(), cmap="viridis", vmin=low, vmax=1, aspect="auto")
        ax.set_title(name, fontsize=10)
        ax.set_xticks(range(grid.shape[1]), grid.columns, rotation=30, ha="right", rotation_mode="anchor", fontsize=7)
        ax.set_yticks(range(grid.shape[0]), grid.index)
        for (row, column), value in np.ndenumerate(grid.to_numpy()):
            shade = (value - low) / (1 - low)
            ax.text(column, row, f"{value:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if shade < 0.6 else "black")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def child_runs(client, parent_run_id: str):
    """Return the runs nested under a parent run, oldest first."""
    parent = client.get_run(parent_run_id)
    runs = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_run_id}'", max_results=5000
    )
    return sorted(runs, key=lambda run: run.info.start_time)


def summary_k(table: pd.DataFrame) -> int:
    """Return the k the figures show: 5 when it was scored, else the smallest k."""
    ks = sorted(set(table.k))
    return 5 if 5 in ks else ks[0]


def write_summary(client, runs, folder: Path) -> dict[str, Path]:
    """Write the summary files of a set of runs into ``folder`` and return them by name."""
    table = accuracy_table(runs)
    if table.empty:
        return {}
    k = summary_k(table)
    files = {"csv": folder / "summary_knn_accuracy.csv", "markdown": folder / "summary_knn_accuracy.md"}
    table.to_csv(files["csv"], index=False, float_format="%.4f")
    files["markdown"].write_text(markdown_table(wide_table(table)))
    files["heatmap"] = plot_heatmap(table, k, folder / "summary_heatmap.png")
    grid = plot_scatter_grid(client, runs, table, k, folder / "summary_scatter_grid.png")
    if grid is not None:
        files["grid"] = grid
    quality = quality_table(runs)
    if not quality.empty:
        files["quality_csv"] = folder / "summary_quality.csv"
        quality.to_csv(files["quality_csv"], index=False, float_format="%.4f")
        files["quality_heatmaps"] = plot_quality_heatmaps(quality, folder / "summary_quality_heatmaps.png")
    return files


def record_job_outcome(parent: dict, job_num: int, overrides: list[str], error: BaseException | None) -> None:
    """Store one job's outcome beside the sweep and refresh the parent run's summary."""
    import mlflow

    client = mlflow.tracking.MlflowClient(parent["tracking_uri"])
    outcomes_path = Path(parent["sweep_id"]) / OUTCOMES_FILE
    with FileLock(str(outcomes_path) + ".lock"):
        outcomes = json.loads(outcomes_path.read_text()) if outcomes_path.is_file() else {}
        outcomes[str(job_num)] = {
            "status": "FAILED" if error is not None else "FINISHED",
            "overrides": redact_text(" ".join(overrides)),
            "error": None if error is None else redact_text(f"{type(error).__name__}: {error}"),
        }
        outcomes_path.write_text(json.dumps(outcomes, indent=2))
        _refresh_parent(client, parent, outcomes)


def _refresh_parent(client, parent: dict, outcomes: dict) -> None:
    run_id = parent["run_id"]
    failed = {num: outcome for num, outcome in outcomes.items() if outcome["status"] == "FAILED"}
    client.log_metric(run_id, "jobs_finished", len(outcomes) - len(failed))
    client.log_metric(run_id, "jobs_failed", len(failed))
    with tempfile.TemporaryDirectory(prefix="layer-maps-summary-") as folder:
        jobs_path = Path(folder) / "jobs.json"
        jobs_path.write_text(json.dumps(outcomes, indent=2))
        client.log_artifact(run_id, str(jobs_path))
        for path in write_summary(client, child_runs(client, run_id), Path(folder)).values():
            client.log_artifact(run_id, str(path))
    for num, outcome in failed.items():
        client.set_tag(run_id, f"failed_job.{num}", f"{outcome['overrides']}: {outcome['error']}"[:5000])
    if len(outcomes) >= parent["n_jobs"]:
        finish_parent(parent, failed=bool(failed))


def finish_parent(parent: dict, failed: bool | None = None) -> None:
    """End the parent run FINISHED, or FAILED when a job failed, unless it has ended already."""
    import mlflow

    client = mlflow.tracking.MlflowClient(parent["tracking_uri"])
    run = client.get_run(parent["run_id"])
    if run.info.status != "RUNNING":
        return
    if failed is None:
        failed = run.data.metrics.get("jobs_failed", 0) > 0
    client.set_terminated(parent["run_id"], status="FAILED" if failed else "FINISHED")
    log.info("sweep: parent run %s ended %s", parent["run_id"], "FAILED" if failed else "FINISHED")
