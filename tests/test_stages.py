"""The stage functions on their own: cache keys and what evolution adds to training."""

from __future__ import annotations

from omegaconf import OmegaConf

from src.data import load_dataset
from src.stages import snapshot_recorder, training_key_config


def test_evolution_off_keeps_the_training_key(compose_config, small_job):
    off = compose_config(small_job)
    without_section = compose_config(small_job)
    OmegaConf.set_struct(without_section, False)
    del without_section["evolution"]

    assert training_key_config(off) == training_key_config(without_section)
    assert training_key_config(compose_config([*small_job, "evolution.enabled=true"])) != training_key_config(off)


def test_evolution_off_adds_no_callback(compose_config, small_job):
    cfg = compose_config(small_job)
    dataset = load_dataset(cfg.data, seed=cfg.seed)

    assert snapshot_recorder(cfg, dataset) == (None, None)
