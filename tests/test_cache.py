"""The stage cache: hits, misses, corrupt entries, version changes, parallel and killed writers."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time

import numpy as np
import pytest

from src.cache import ARRAYS_FILE, StageCache, config_key

VERSIONS = {"numpy": "1.0"}


def _counting_compute(calls, value=1.0):
    def compute(folder):
        calls.append(folder)
        return {"x": np.full(3, value)}, {"value": value}

    return compute


def test_config_key_ignores_key_order():
    assert config_key({"a": 1, "b": [2, 3]}) == config_key({"b": [2, 3], "a": 1})
    assert config_key({"a": 1}) != config_key({"a": 2})


def test_second_call_hits(tmp_path):
    cache, calls = StageCache(tmp_path), []
    first = cache.get_or_compute("train", {"epochs": 2}, VERSIONS, _counting_compute(calls))
    second = cache.get_or_compute("train", {"epochs": 2}, VERSIONS, _counting_compute(calls))
    assert len(calls) == 1
    assert not first.hit
    assert second.hit
    np.testing.assert_array_equal(second.arrays["x"], np.ones(3))
    assert second.meta == {"value": 1.0}
    assert cache.outcomes == {"train": "hit"}


def test_other_config_misses(tmp_path):
    cache, calls = StageCache(tmp_path), []
    cache.get_or_compute("train", {"epochs": 2}, VERSIONS, _counting_compute(calls))
    entry = cache.get_or_compute("train", {"epochs": 3}, VERSIONS, _counting_compute(calls))
    assert len(calls) == 2
    assert not entry.hit


def test_disabled_cache_always_computes(tmp_path):
    cache, calls = StageCache(tmp_path / "cache", enabled=False), []
    for _ in range(2):
        entry = cache.get_or_compute("train", {}, VERSIONS, _counting_compute(calls), label="train")
    assert len(calls) == 2
    assert not entry.hit
    assert cache.outcomes == {"train": "off"}
    assert not (tmp_path / "cache").exists()


def test_files_written_by_compute_are_kept(tmp_path):
    def compute(folder):
        (folder / "model.keras").write_bytes(b"weights")
        return {"x": np.zeros(1)}, {}

    entry = StageCache(tmp_path).get_or_compute("train", {}, VERSIONS, compute)
    assert (entry.path / "model.keras").read_bytes() == b"weights"


def test_corrupt_entry_is_recomputed(tmp_path, caplog):
    cache, calls = StageCache(tmp_path), []
    entry = cache.get_or_compute("embed", {"layer": "input"}, VERSIONS, _counting_compute(calls))
    arrays = entry.path / ARRAYS_FILE
    arrays.write_bytes(arrays.read_bytes()[:40])

    with caplog.at_level(logging.WARNING, logger="src.cache"):
        again = cache.get_or_compute("embed", {"layer": "input"}, VERSIONS, _counting_compute(calls, value=2.0))
    assert len(calls) == 2
    assert not again.hit
    assert "is unreadable" in caplog.text
    assert "recomputing" in caplog.text
    reloaded = cache.get_or_compute("embed", {"layer": "input"}, VERSIONS, _counting_compute(calls))
    assert reloaded.hit
    np.testing.assert_array_equal(reloaded.arrays["x"], np.full(3, 2.0))


def test_changed_library_version_is_recomputed(tmp_path, caplog):
    cache, calls = StageCache(tmp_path), []
    cache.get_or_compute("train", {}, {"keras": "3.0"}, _counting_compute(calls))
    with caplog.at_level(logging.WARNING, logger="src.cache"):
        entry = cache.get_or_compute("train", {}, {"keras": "3.1"}, _counting_compute(calls))
    assert len(calls) == 2
    assert not entry.hit
    assert "keras 3.0 -> 3.1" in caplog.text


def test_failed_compute_leaves_no_entry(tmp_path):
    def compute(folder):
        (folder / "partial").write_text("half")
        raise RuntimeError("training diverged")

    cache = StageCache(tmp_path)
    with pytest.raises(RuntimeError, match="training diverged"):
        cache.get_or_compute("train", {}, VERSIONS, compute)
    assert [path.name for path in (tmp_path / "train").iterdir() if not path.name.endswith(".lock")] == []


def _compute_once_in_process(root, counter_file):
    def compute(folder):
        with open(counter_file, "a") as counter:
            counter.write("computed\n")
        time.sleep(1.5)
        return {"x": np.arange(4)}, {}

    entry = StageCache(root).get_or_compute("train", {"shared": True}, VERSIONS, compute)
    if entry.arrays["x"].tolist() != [0, 1, 2, 3]:
        raise SystemExit(3)


def test_parallel_jobs_compute_once(tmp_path):
    counter_file = tmp_path / "counter.txt"
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_compute_once_in_process, args=(tmp_path / "cache", counter_file)) for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0, 0]
    assert counter_file.read_text().splitlines() == ["computed"]


def _write_forever(root, started_file):
    def compute(folder):
        np.save(folder / "half_written.npy", np.zeros(1000))
        started_file.write_text("started")
        time.sleep(600)
        return {}, {}

    StageCache(root).get_or_compute("train", {"killed": True}, VERSIONS, compute)


def test_killed_writer_leaves_no_valid_entry(tmp_path):
    started_file = tmp_path / "started"
    context = multiprocessing.get_context("spawn")
    writer = context.Process(target=_write_forever, args=(tmp_path / "cache", started_file))
    writer.start()
    deadline = time.monotonic() + 60
    while not started_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert started_file.exists()
    os.kill(writer.pid, signal.SIGKILL)
    writer.join(timeout=30)

    calls = []
    entry = StageCache(tmp_path / "cache").get_or_compute("train", {"killed": True}, VERSIONS, _counting_compute(calls))
    assert len(calls) == 1
    assert not entry.hit
    np.testing.assert_array_equal(entry.arrays["x"], np.ones(3))
    leftovers = [path.name for path in (tmp_path / "cache" / "train").iterdir() if path.name.startswith(".")]
    assert leftovers == []
