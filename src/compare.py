"""Print the kNN accuracy table of a sweep or an experiment, reading only MLflow.

    python -m src.compare                          # the newest sweep in the default store
    python -m src.compare --experiment layer-maps --all
    python -m src.compare --tracking-uri http://127.0.0.1:5000 --parent-run RUN_ID --out figures/

It shows which embedder and which layer separate the digits best, without a browser,
and also reads sweeps recorded before the summary existed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from src.tracking import redact_credentials, resolve_tracking_uri


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m src.compare", description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: the project's SQLite store)")
    parser.add_argument("--experiment", default="layer-maps", help="experiment name (default: layer-maps)")
    selection = parser.add_mutually_exclusive_group()
    selection.add_argument("--parent-run", help="id of a sweep's parent run (default: the newest sweep)")
    selection.add_argument("--all", action="store_true", help="compare every run of the experiment")
    parser.add_argument("--k", type=int, help="k shown in the ranking and the figures (default: 5 if scored)")
    parser.add_argument("--out", type=Path, help="also write the summary CSV, Markdown and figures here")
    return parser.parse_args(argv)


def select_runs(client, experiment_id: str, parent_run: str | None, every_run: bool):
    """Return the runs to compare and a one-line description of them."""
    from src.summary import child_runs

    if parent_run:
        return child_runs(client, parent_run), f"sweep {parent_run}"
    runs = client.search_runs([experiment_id], max_results=5000, order_by=["attributes.start_time DESC"])
    jobs = [run for run in runs if run.data.tags.get("sweep.role") != "parent"]
    if every_run:
        return list(reversed(jobs)), f"all {len(jobs)} runs"
    parents = [run for run in runs if run.data.tags.get("sweep.role") == "parent"]
    if parents:
        newest = parents[0]
        return child_runs(client, newest.info.run_id), f"{newest.info.run_name} ({newest.info.run_id})"
    return list(reversed(jobs)), f"all {len(jobs)} runs (no sweep parent run found)"


def main(argv=None) -> int:
    import mlflow

    from src.summary import accuracy_table, quality_table, summary_k, wide_table, write_summary

    args = parse_args(argv)
    tracking_uri = resolve_tracking_uri(args.tracking_uri)
    client = mlflow.tracking.MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(args.experiment)
    if experiment is None:
        print(f"No experiment {args.experiment!r} in {redact_credentials(tracking_uri)}. "
              "Pass --experiment NAME or --tracking-uri URI.", file=sys.stderr)
        return 2

    runs, description = select_runs(client, experiment.experiment_id, args.parent_run, args.all)
    table = accuracy_table(runs)
    if table.empty:
        print(f"No kNN accuracy metrics in {description}.", file=sys.stderr)
        return 1
    k = args.k or summary_k(table)

    print(f"{description}: 2-D kNN accuracy of the test digits\n")
    print(wide_table(table).to_string(float_format=lambda value: f"{value:.3f}"))
    best = table[table.k == k].sort_values("knn_acc", ascending=False).iloc[0]
    print(f"\nbest map at k={k}: {best.run_name}, layer {best.layer}: {best.knn_acc:.3f} "
          f"(full space {best.knn_acc_full:.3f})")

    quality = quality_table(runs)
    if not quality.empty:
        print("\nmap quality (trustworthiness and continuity at quality.k; probe_acc scores the layer, not the map)\n")
        by_layer = quality.drop(columns="embedder").set_index(["run_name", "layer"]).dropna(axis="columns", how="all")
        print(by_layer.to_string(float_format=lambda value: f"{value:.3f}"))

    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for path in write_summary(client, runs, args.out).values():
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
