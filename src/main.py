"""Entry point: train the MLP, map every hidden layer in 2-D, score and track the maps.

    python -m src.main                                   # one job with the defaults
    python -m src.main -m embedder=pca,tsne,umap,trimap  # a sweep, one MLflow run per job

TensorFlow, the embedding libraries and MLflow are imported by the stages that use
them, so ``--help`` and config errors return in seconds.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from src.cache import StageCache
from src.errors import ConfigError, DataError, DiskFullError
from src.paths import PROJECT_ROOT, resolve_path
from src.stages import (
    StageTimer,
    follow_training,
    log_run_inputs,
    log_training,
    map_layers,
    prepare_dataset,
    run_name,
    run_tags,
    train_and_extract,
)
from src.validation import validate_config

log = logging.getLogger(__name__)

# errno values of a write that found no room: disk full, quota exceeded, file too large.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def run_job(cfg: DictConfig, output_dir: Path, job_log: Path | None) -> float:
    """Run every stage of one job and record it as one MLflow run.

    Returns
    -------
    float
        Mean 2-D kNN accuracy of the last hidden layer over all k, for sweepers that optimise.
    """
    from src import tracking

    timer = StageTimer()
    cache = StageCache(resolve_path(cfg.cache.dir), enabled=cfg.cache.enabled)

    tracking_uri = tracking.resolve_tracking_uri(cfg.tracking.uri)
    experiment_id = tracking.set_up_experiment(tracking_uri, cfg.tracking.experiment)
    tracking.end_orphaned_runs(experiment_id)
    log.info("tracking to %s, experiment %r", tracking.redact_credentials(tracking_uri), cfg.tracking.experiment)

    # The run starts before the data are read, so a job that fails on its data still leaves
    # a FAILED run with the error as its tag, next to the sweep's other runs.
    with tracking.tracked_run(run_name(cfg), run_tags(cfg), job_log):
        with timer.stage("data"):
            dataset = prepare_dataset(cfg)
        log_run_inputs(cfg, dataset)

        layers = train_and_extract(cfg, dataset, cache, timer)
        log_training(layers, output_dir)

        table, embeddings = map_layers(cfg, dataset, layers, cache, output_dir, timer)
        tracking.log_accuracy_table(table)

        if layers.snapshots:
            follow_training(cfg, dataset, layers, embeddings, cache, output_dir, timer)

        timer.log_to_mlflow()
        tracking.log_cache_outcomes(cache.outcomes)

    last_layer = table.index[-1]
    return float(table.loc[last_layer, [f"2d_k{k}" for k in cfg.knn.k]].mean())


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Validate the composed config, then run the job."""
    try:
        validate_config(OmegaConf.to_container(cfg, resolve=True))
    except (ConfigError, DataError) as error:
        _reject(error)

    if cfg.cache.enabled:
        # numba reads this when it is first imported, by UMAP or TriMAP: compiled code is then
        # stored there and reused by the next process instead of compiled again.
        os.environ.setdefault("NUMBA_CACHE_DIR", str(resolve_path(cfg.cache.dir) / "numba"))

    runtime = HydraConfig.get()
    output_dir = Path(runtime.runtime.output_dir)
    job_log = output_dir / f"{runtime.job.name}.log"
    previous_handlers = _interrupt_on_termination()
    try:
        return run_job(cfg, output_dir, job_log)
    except (ConfigError, DataError) as error:
        _reject(error)
    except OSError as error:
        if error.errno not in DISK_FULL:
            raise
        _reject(DiskFullError(disk_full_message(error, cfg)), status=1)
    except KeyboardInterrupt:
        log.error("interrupted: the MLflow run was ended KILLED; completed stages stay in the cache")
        raise SystemExit(130) from None
    finally:
        for signum, handler in previous_handlers.items():
            signal.signal(signum, handler)


def disk_full_message(error: OSError, cfg: DictConfig) -> str:
    """Explain a write that failed for want of space, and where the job writes."""
    from src.tracking import redact_credentials, resolve_tracking_uri

    return (
        f"A write failed because the disk is full ({error.strerror}: {error.filename}). "
        "The MLflow run ended FAILED and keeps what it had logged; finished stages stay in the cache. "
        f"The job writes to tracking.uri={redact_credentials(resolve_tracking_uri(cfg.tracking.uri))}, "
        f"cache.dir={resolve_path(cfg.cache.dir)} and {HydraConfig.get().runtime.output_dir}. "
        "Free space there, or point tracking.uri or cache.dir at another disk, "
        "then run the same command again: it resumes from the cache."
    )


def _reject(error: Exception, status: int = 2) -> None:
    """Log an error the user can fix without a traceback, and stop the job.

    In a sweep the error is raised again, so Hydra still runs the remaining jobs and
    reports the failure at the end. A single run exits with ``status``. With
    ``HYDRA_FULL_ERROR=1`` the error is raised with its traceback in both cases.
    """
    log.error("%s", error)
    if HydraConfig.get().mode.name == "MULTIRUN" or os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise error
    raise SystemExit(status) from None


def _interrupt_on_termination() -> dict:
    """Turn SIGTERM and SIGHUP into KeyboardInterrupt, so the run ends KILLED as on Ctrl-C.

    Schedulers (Slurm, ``timeout``, ``docker stop``) stop jobs with SIGTERM, whose default
    action would end the process with its MLflow run still RUNNING. A signal the process
    was started with ignored stays ignored: ``nohup`` ignores SIGHUP so that a run outlives
    the terminal.
    """

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")

    previous = {}
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, interrupt)
    return previous


if __name__ == "__main__":
    OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT), replace=True)
    main()
