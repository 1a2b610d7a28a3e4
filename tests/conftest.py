"""Shared fixtures: the real Hydra config, shrunk, with every output under tmp_path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from src.paths import PROJECT_ROOT

MNIST_DIR = PROJECT_ROOT.parent / "shared" / "data" / "mnist"



@pytest.fixture(scope="session", autouse=True)
def project_root_resolver():
    OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT), replace=True)


@pytest.fixture
def small_job() -> list[str]:
    """Overrides that shrink a job to seconds: the 8x8 digits, a small network, one epoch."""
    return ["data=digits", "model.hidden_units=[32,16]", "train.epochs=1", "embedder=pca", "progress=false"]


@pytest.fixture
def compose_config():
    """Return a function that composes conf/config.yaml with the given overrides."""

    def _compose(overrides=()):
        with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides))

    return _compose


@pytest.fixture
def mnist_dir() -> Path:
    """The real MNIST test set in IDX files, beside the project; the test skips without it."""
    if not (MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"the MNIST test set is not at {MNIST_DIR}")
    return MNIST_DIR


@pytest.fixture
def run_cli(tmp_path):
    """Return a function that runs ``python -m src.main ARGS`` with MLflow and Hydra output in tmp_path."""

    def _run(args, timeout: float = 900, extra_env=None) -> subprocess.CompletedProcess:
        return run_main(args, tmp_path, timeout, extra_env)

    return _run


def run_main(
    args, tmp_path: Path, timeout: float = 900, extra_env=None, handle_sigint: bool = False
) -> subprocess.CompletedProcess:
    """Run ``python -m src.main ARGS`` with MLflow, Hydra and cache output under ``tmp_path``.

    Each of those defaults is left out when ``args`` set the same key. ``handle_sigint``
    restores the default SIGINT action in the job (see _default_sigint). It uses a
    ``preexec_fn``, which is not safe when other threads start processes at the same time.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
    defaults = [
        f"tracking.uri=sqlite:///{tmp_path}/mlruns/mlflow.db",
        f"hydra.run.dir={tmp_path}/outputs",
        f"hydra.sweep.dir={tmp_path}/multirun",
        f"cache.dir={tmp_path}/cache",
    ]
    overridden_keys = {arg.split("=", 1)[0] for arg in args}
    command = [
        sys.executable,
        "-m",
        "src.main",
        *args,
        *(default for default in defaults if default.split("=", 1)[0] not in overridden_keys),
    ]
    return subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
        preexec_fn=_default_sigint if handle_sigint else None,
    )


def _default_sigint() -> None:
    """Let the job handle Ctrl-C even when pytest itself was started in the background.

    A shell starts background commands with SIGINT ignored, children inherit that, and Python
    then installs no KeyboardInterrupt handler.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture
def reliability_record():
    """Return a function that appends one JSON line to $LAYER_MAPS_RELIABILITY_LOG, when it is set.

    benchmarks/reliability_report.py sets it to count what the catalogue and fault tests saw.
    """

    def _record(**fields) -> None:
        path = os.environ.get("LAYER_MAPS_RELIABILITY_LOG")
        if path:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(fields) + "\n")

    return _record
