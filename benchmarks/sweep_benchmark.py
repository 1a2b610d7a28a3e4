"""Time a four-embedder sweep against the seed notebook's pipeline on the same digits.

    python benchmarks/sweep_benchmark.py                 # seed pipeline, harness cold and warm
    python benchmarks/sweep_benchmark.py --scaling       # also 10k, 20k, 40k and 70k digits

Data: the real MNIST test set in ../shared/data/mnist (10,000 digits), split 8,000 train /
2,000 test, stratified with seed 0, the same split for both sides. Each side runs in its
own process, so its wall seconds, CPU seconds and peak RSS are its own. Ratios compare
runs made by this one invocation on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from src.data import read_idx  # noqa: E402

MNIST_DIR = PROJECT_ROOT.parent / "shared" / "data" / "mnist"
EMBEDDERS = ("pca", "tsne", "umap", "trimap")
LAYERS = ("input", "hidden_1", "hidden_2")
KS = (3, 5, 10)


def load_mnist_test_set() -> tuple[np.ndarray, np.ndarray]:
    images = MNIST_DIR / "t10k-images-idx3-ubyte.gz"
    if not images.is_file():
        sys.exit(f"The MNIST test set is not at {MNIST_DIR}; this benchmark needs its two IDX files.")
    return read_idx(images), read_idx(MNIST_DIR / "t10k-labels-idx1-ubyte.gz")


def write_split(images, labels, path: Path, test_share: float = 0.2) -> Path:
    """Write a stratified, seeded train/test split as a Keras-format mnist.npz."""
    from sklearn.model_selection import train_test_split

    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_share, stratify=labels, random_state=0
    )
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def run_child(command: list[str], log_path: Path, env: dict | None = None) -> dict:
    """Run a command to completion and return its wall seconds, CPU seconds and peak RSS."""
    start = time.perf_counter()
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if process.returncode != 0:
        sys.exit(f"{' '.join(command)} failed with exit code {process.returncode}; see {log_path}")
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "log": log_path.read_text(),
    }


def harness_command(data_path: Path, work: Path, label: str, embedders=EMBEDDERS) -> list[str]:
    return [
        sys.executable, "-m", "src.main", "-m",
        f"embedder={','.join(embedders)}",
        "data=mnist",
        f"data.path={data_path}",
        f"cache.dir={work / 'cache'}",
        f"tracking.uri=sqlite:///{work / 'mlruns' / 'mlflow.db'}",
        f"tracking.experiment={label}",
        f"hydra.sweep.dir={work / 'multirun' / label}",
        "progress=false",
    ]


def harness_runs(work: Path, label: str) -> list:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{work / 'mlruns' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=[label], output_format="list")
    return [run for run in runs if run.data.tags.get("sweep.role") != "parent"]


def stage_seconds(runs) -> dict[str, float]:
    """Sum each run's ``time/<stage>`` metrics, folding ``embed/<layer>`` into ``embed``."""
    totals: dict[str, float] = {}
    for run in runs:
        for key, value in run.data.metrics.items():
            if key.startswith("time/"):
                stage = key[len("time/"):].split("/")[0]
                totals[stage] = totals.get(stage, 0.0) + value
    return totals


def side_line(name: str, result: dict) -> str:
    return (
        f"{name:<16} wall {result['wall']:7.1f} s   cpu {result['cpu']:7.1f} s   "
        f"peak RSS {result['peak_rss_mb']:6.0f} MB"
    )


def compare_sweeps(work: Path, data_path: Path, skip_seed: bool) -> None:
    seed = None
    if not skip_seed:
        results_path = work / "seed_results.json"
        seed = run_child(
            [sys.executable, "benchmarks/seed_pipeline.py", str(data_path), str(results_path)], work / "seed.log"
        )
        seed.update(json.loads(results_path.read_text()))

    cold = run_child(harness_command(data_path, work, "cold"), work / "cold.log")
    warm = run_child(harness_command(data_path, work, "warm"), work / "warm.log")
    cold_runs, warm_runs = harness_runs(work, "cold"), harness_runs(work, "warm")
    cold_stages = stage_seconds(cold_runs)

    print("\n== sweep of pca, tsne, umap, trimap on 8,000 train / 2,000 test real MNIST digits ==")
    if seed:
        print(side_line("seed pipeline", seed), "  stages:", _format_stages(seed["seconds"]))
    print(side_line("harness (cold)", cold), "  stages:", _format_stages(cold_stages))
    print(side_line("harness (warm)", warm), "  stages:", _format_stages(stage_seconds(warm_runs)))

    work_seconds = sum(cold_stages.get(stage, 0.0) for stage in ("train", "activations", "embed", "score"))
    overhead = (cold["wall"] - work_seconds) / cold["wall"]
    trainings = cold["log"].count("stage train: started")
    print()
    if seed:
        _print_goal("seed / harness (cold)", seed["wall"] / cold["wall"], ">= 3", seed["wall"] / cold["wall"] >= 3)
        print(f"{'seed / harness (warm)':<34} {seed['wall'] / warm['wall']:6.2f}x")
    _print_goal("harness warm / cold", warm["wall"] / cold["wall"], "< 0.10", warm["wall"] / cold["wall"] < 0.10)
    _print_goal("trainings in the cold sweep", trainings, "== 1", trainings == 1)
    _print_goal("harness overhead share (cold)", overhead, "< 0.05", overhead < 0.05)
    print(f"{'':<34} (wall time outside train, activations, embed and score: {cold['wall'] - work_seconds:.1f} s)")
    _print_accuracies(cold_runs, seed)


def _format_stages(seconds: dict) -> str:
    return ", ".join(f"{stage} {value:.1f}" for stage, value in sorted(seconds.items()))


def _print_goal(name: str, value: float, goal: str, met: bool) -> None:
    print(f"{name:<34} {value:6.2f}   goal {goal:<6}  {'met' if met else 'NOT met'}")


def _print_accuracies(cold_runs, seed) -> None:
    print("\n2-D kNN accuracy at k=5, test digits (harness: one map per layer; seed: as the notebook fitted)")
    print(f"{'embedder':<8} {'layer':<9} {'harness':>8} {'seed':>8}")
    by_embedder = {run.data.tags["embedder"]: run.data.metrics for run in cold_runs}
    for embedder in EMBEDDERS:
        for layer in LAYERS:
            harness = by_embedder[embedder][f"knn_acc/{layer}/k5"]
            baseline = f"{seed['accuracy'][f'{embedder}/{layer}/k5']:8.3f}" if seed else "       -"
            print(f"{embedder:<8} {layer:<9} {harness:8.3f} {baseline}")


def shifted_copies(images, labels, n_total: int) -> tuple[np.ndarray, np.ndarray]:
    """Grow the 10,000 real digits to n_total with copies shifted by one pixel."""
    shifts = [(0, 0), (1, 0), (0, 1), (-1, 0), (0, -1), (1, 1), (-1, -1)]
    copies = [np.roll(images, shift, axis=(1, 2)) for shift in shifts]
    grown = np.concatenate(copies)[:n_total]
    return grown, np.tile(labels, len(shifts))[:n_total]


def scaling(work: Path, images, labels, sizes: list[int], embedders: list[str]) -> None:
    # A shared numba cache, warmed by a small first run, keeps compilation out of the sizes.
    env = {"NUMBA_CACHE_DIR": str(work / "numba")}
    warmup = write_split(images[:2000], labels[:2000], work / "warmup.npz")
    run_child(harness_command(warmup, work / "warmup", "warmup", embedders), work / "warmup.log", env)

    print(f"\n== scaling: harness with embedders {','.join(embedders)}, empty stage cache per size ==")
    measured = []
    for size in sizes:
        grown_images, grown_labels = shifted_copies(images, labels, size)
        data_path = write_split(grown_images, grown_labels, work / f"digits_{size}.npz")
        result = run_child(
            harness_command(data_path, work / f"size_{size}", f"size_{size}", embedders), work / f"size_{size}.log", env
        )
        measured.append((size, result["wall"]))
        print(f"{size:>6} digits   wall {result['wall']:7.1f} s   peak RSS {result['peak_rss_mb']:6.0f} MB")
    sizes_array, seconds = np.array([m[0] for m in measured]), np.array([m[1] for m in measured])
    exponent = np.polyfit(np.log(sizes_array), np.log(seconds), 1)[0]
    _print_goal(f"time growth exponent {sizes[0]}-{sizes[-1]}", exponent, "<= 1.2", exponent <= 1.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skip-seed", action="store_true", help="skip the seed pipeline (about 6 minutes)")
    parser.add_argument("--skip-sweep", action="store_true", help="skip the seed-versus-harness comparison")
    parser.add_argument("--scaling", action="store_true", help="also time the harness at growing sizes")
    parser.add_argument("--sizes", default="10000,20000,40000,70000", help="digits per scaling run, comma-separated")
    parser.add_argument("--scaling-embedders", default="pca,umap", help="embedders of the scaling runs")
    parser.add_argument("--keep", type=Path, help="keep logs, stores and caches in this folder")
    parser.add_argument(
        "--write-split", type=Path, metavar="NPZ",
        help="only write the 8,000 / 2,000 split as a Keras-format mnist.npz to NPZ, for data.path",
    )
    args = parser.parse_args()

    images, labels = load_mnist_test_set()
    if args.write_split:
        args.write_split.parent.mkdir(parents=True, exist_ok=True)
        print(f"wrote {write_split(images, labels, args.write_split)}")
        return
    work = args.keep or Path(tempfile.mkdtemp(prefix="sweep-benchmark-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"working folder: {work}")
    if not args.skip_sweep:
        data_path = write_split(images, labels, work / "mnist_8k_2k.npz")
        compare_sweeps(work, data_path, args.skip_seed)
    if args.scaling:
        sizes = [int(size) for size in args.sizes.split(",")]
        scaling(work, images, labels, sizes, args.scaling_embedders.split(","))


if __name__ == "__main__":
    main()
