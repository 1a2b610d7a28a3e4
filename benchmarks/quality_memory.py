"""Measure the time and peak extra memory of the map quality metrics as the data grow.

    python benchmarks/quality_memory.py                     # 7,000 then 70,000 points
    python benchmarks/quality_memory.py --direct 0          # skip the n_points=20,000 run

Data: synthetic float32 activations, 10 Gaussian blobs in 64 dimensions, and a 2-D map
that is a fixed random linear projection of them plus noise. One sixth of the points are
test points, as in MNIST. Each size runs the full computation of one layer and map:
map_quality() with the config defaults (a 5,000-point subsample) and linear_probe_accuracy()
on every training and test point, after one unmeasured warm-up run on 1,000 points. The
first size is the baseline. A last run calls
map_quality() on the large data with ``n_points`` raised to ``--direct``, where one dense
float64 distance matrix would need n_points * n_points * 8 bytes.

"Peak extra" is the peak resident set size during a run minus the resident set size just
before it, in MiB. Freed heap memory is returned to the system before each run
(glibc ``malloc_trim``), and the kernel's peak counter is reset (Linux
``/proc/self/clear_refs``), so each run's peak is its own. All runs share one process.
"""

from __future__ import annotations

import argparse
import ctypes
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from src.quality import linear_probe_accuracy, map_quality  # noqa: E402

GOAL_MB = 2048
N_CLASSES = 10
N_FEATURES = 64


def make_layer(n_points: int, seed: int) -> dict[str, np.ndarray]:
    """Build blobs and their 2-D map, split into training and test points like map_quality() takes them."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(N_CLASSES, N_FEATURES))
    y = rng.integers(0, N_CLASSES, size=n_points)
    X = (centres[y] + rng.normal(size=(n_points, N_FEATURES))).astype(np.float32)
    projection = rng.normal(size=(N_FEATURES, 2))
    embedding = (X @ projection + rng.normal(scale=2.0, size=(n_points, 2))).astype(np.float32)
    n_train = n_points - n_points // 6
    return {
        "X_train_high": X[:n_train],
        "X_test_high": X[n_train:],
        "y_train": y[:n_train],
        "y_test": y[n_train:],
        "map_train": embedding[:n_train],
        "map_test": embedding[n_train:],
    }


def score_layer(layer: dict[str, np.ndarray], seed: int) -> None:
    map_quality(**layer, seed=seed)
    linear_probe_accuracy(layer["X_train_high"], layer["y_train"], layer["X_test_high"], layer["y_test"], seed=seed)


def _read_status_kib(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", status, re.MULTILINE).group(1))


def measure(run: Callable[[], None]) -> tuple[float, float]:
    """Run once and return (seconds, peak extra resident memory in MiB)."""
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    # Writing 5 resets VmHWM, the peak resident set size, to the current size (Linux 4.0 and later).
    Path("/proc/self/clear_refs").write_text("5")
    before_kib = _read_status_kib("VmRSS")
    started = time.perf_counter()
    run()
    seconds = time.perf_counter() - started
    return seconds, (_read_status_kib("VmHWM") - before_kib) / 1024


def report(label: str, seconds: float, extra_mb: float) -> None:
    verdict = "met" if extra_mb < GOAL_MB else "NOT met"
    print(f"{label}: {seconds:.1f} s, peak extra {extra_mb:.0f} MB (goal < {GOAL_MB} MB: {verdict})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=int, default=7_000, help="points in the baseline run (default 7,000)")
    parser.add_argument("--points", type=int, default=70_000, help="points in the large run (default 70,000)")
    parser.add_argument(
        "--direct", type=int, default=20_000,
        help="n_points of a last map_quality() run on the large data; 0 skips it (default 20,000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and of the metrics (default 0)")
    args = parser.parse_args()

    # An unmeasured run first, so that lazy imports and thread pools do not count toward the baseline.
    score_layer(make_layer(1_000, args.seed), args.seed)

    results = {}
    for n_points in (args.baseline, args.points):
        layer = make_layer(n_points, args.seed)
        results[n_points] = measure(lambda: score_layer(layer, args.seed))
        report(f"{n_points:,} points", *results[n_points])

    (base_seconds, base_mb), (seconds, extra_mb) = results[args.baseline], results[args.points]
    print(
        f"{args.points:,} / {args.baseline:,} points: time x{seconds / base_seconds:.2f}, "
        f"peak extra memory x{extra_mb / max(base_mb, 1):.2f}",
        flush=True,
    )

    if args.direct:
        # layer is still the large data from the loop above.
        seconds, extra_mb = measure(lambda: map_quality(**layer, n_points=args.direct, seed=args.seed))
        dense_mb = args.direct**2 * 8 / 2**20
        report(f"map_quality with n_points={args.direct:,} of {args.points:,}, no probe", seconds, extra_mb)
        print(f"  (one dense {args.direct:,} x {args.direct:,} float64 distance matrix: {dense_mb:,.0f} MB)")


if __name__ == "__main__":
    main()
