"""A disk cache for stage results, keyed by a hash of the config the result depends on.

An entry is a folder ``<cache.dir>/<stage>/<key>/`` holding ``arrays.npz`` (loaded with
``allow_pickle=False``), ``meta.json`` and any files the stage wrote there. Entries are
written under a temporary name and renamed into place, so a job killed mid-write never
leaves a folder that loads as an entry. A file lock per key makes a second job that needs
the same missing entry wait for the first and then load its result.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
from filelock import FileLock

log = logging.getLogger(__name__)

# Bumped when the layout of an entry changes, so older entries are recomputed.
CACHE_FORMAT = 1

ARRAYS_FILE = "arrays.npz"
META_FILE = "meta.json"


@dataclass
class CacheEntry:
    """Arrays and JSON metadata of one stage result, and where they came from."""

    arrays: dict[str, np.ndarray]
    meta: dict
    hit: bool
    path: Path | None = None


def config_key(config: Mapping) -> str:
    """Return a stable hash of a JSON-serialisable config: the same values give the same key."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def library_versions(*packages: str) -> dict[str, str]:
    """Return the installed version of each distribution, read without importing it."""
    versions = {}
    for package in packages:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


class StageCache:
    """Load a stage result from disk, or compute it once and store it.

    Parameters
    ----------
    root : str or Path
        Folder of the cache; one subfolder per stage.
    enabled : bool, default=True
        When false, every call computes and nothing is read or written.
    """

    def __init__(self, root: str | Path, enabled: bool = True) -> None:
        self.root = Path(root)
        self.enabled = enabled
        # "hit", "miss" or "off" per stage label, for the run's tags.
        self.outcomes: dict[str, str] = {}

    def get_or_compute(
        self,
        stage: str,
        key_config: Mapping,
        versions: Mapping[str, str],
        compute: Callable[[Path], tuple[dict[str, np.ndarray], dict]],
        label: str | None = None,
    ) -> CacheEntry:
        """Return the cached result of ``stage`` for ``key_config``, computing it if needed.

        Parameters
        ----------
        stage : str
            Stage name, also the subfolder, e.g. ``"train"`` or ``"embed"``.
        key_config : mapping
            Everything the result depends on; its hash is the entry's key.
        versions : mapping of str to str
            Versions of the libraries that produce the result. An entry written with
            other versions is recomputed, with a WARNING.
        compute : callable
            Called with a scratch folder, returns ``(arrays, meta)``: a dict of NumPy
            arrays (numeric, no objects) and a JSON-serialisable dict. Files it writes
            into the folder become part of the entry.
        label : str, optional
            Name under which the outcome is recorded in ``outcomes``; default ``stage``.

        Returns
        -------
        CacheEntry
            ``hit`` is true when the result came from disk.
        """
        if not self.enabled:
            with tempfile.TemporaryDirectory(prefix=f"{stage}-") as scratch:
                arrays, meta = compute(Path(scratch))
            self.outcomes[label or stage] = "off"
            return CacheEntry(arrays=arrays, meta=meta, hit=False)

        entry = self._load_or_compute(stage, key_config, versions, compute)
        self.outcomes[label or stage] = "hit" if entry.hit else "miss"
        return entry

    def _load_or_compute(self, stage, key_config, versions, compute) -> CacheEntry:
        key = config_key({"format": CACHE_FORMAT, "stage": stage, "config": key_config})
        folder = self.root / stage / key
        entry = self._load(folder, versions)
        if entry is not None:
            return entry

        folder.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder) + ".lock"):
            # Another job may have written the entry while this one waited for the lock.
            entry = self._load(folder, versions, warn=False)
            if entry is not None:
                return entry
            # Scratch folders of this key can only be left by a writer that died, since
            # writers hold the lock.
            for stale in folder.parent.glob(f".{folder.name}-*"):
                shutil.rmtree(stale, ignore_errors=True)
            return self._compute_and_store(folder, key_config, versions, compute)

    def _compute_and_store(self, folder, key_config, versions, compute) -> CacheEntry:
        scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        try:
            arrays, meta = compute(scratch)
            np.savez(scratch / ARRAYS_FILE, **arrays)
            record = {"versions": dict(versions), "config": key_config, "created": time.time(), "meta": meta}
            (scratch / META_FILE).write_text(json.dumps(record, indent=2, default=str))
            # mkdtemp makes the folder private; a cache may be shared by a group.
            scratch.chmod(0o755)
            if folder.exists():
                shutil.rmtree(folder)
            os.rename(scratch, folder)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
        log.info("cache: stored %s", folder)
        return CacheEntry(arrays=arrays, meta=meta, hit=False, path=folder)

    def _load(self, folder: Path, versions: Mapping[str, str], warn: bool = True) -> CacheEntry | None:
        if not folder.is_dir():
            return None
        try:
            record = json.loads((folder / META_FILE).read_text())
            with np.load(folder / ARRAYS_FILE, allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as error:
            if warn:
                log.warning("cache: entry %s is unreadable (%s: %s); recomputing it", folder, type(error).__name__, error)
            return None

        if record.get("versions") != dict(versions):
            changed = ", ".join(
                f"{name} {record.get('versions', {}).get(name, '?')} -> {version}"
                for name, version in versions.items()
                if record.get("versions", {}).get(name) != version
            )
            if warn:
                log.warning("cache: entry %s was written with other library versions (%s); recomputing it", folder, changed)
            return None
        log.info("cache: loaded %s", folder)
        return CacheEntry(arrays=arrays, meta=record["meta"], hit=True, path=folder)
