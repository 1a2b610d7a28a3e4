"""Fault injection for the reliability tests: make a job fail at a chosen point.

Set ``LAYER_MAPS_FAULT=<point>:<fault>`` in a job's environment. When the job reaches
``<point>``, it does ``<fault>`` to itself:

- points: ``train`` (at the end of the second epoch), ``embed`` (half a second into the
  first 2-D map's fit, from a timer thread), ``artifacts`` (between the first layer's
  scatter figure and its coordinates file, both MLflow artifacts);
- faults: ``SIGINT``, ``SIGTERM``, ``SIGKILL`` (the signal, sent to the job's own
  process, so it is handled exactly as one sent from outside), or ``ENOSPC`` (raises the
  OSError a full disk raises).

Without the variable every point does nothing.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import threading

log = logging.getLogger(__name__)

ENV_VAR = "LAYER_MAPS_FAULT"
POINTS = ("train", "embed", "artifacts")
FAULTS = ("SIGINT", "SIGTERM", "SIGKILL", "ENOSPC")

# Seconds from reaching the embed point to the fault, so it lands inside the fit.
EMBED_DELAY = 0.5


def _requested(point: str) -> str | None:
    """Return the fault requested at ``point``, or None."""
    spec = os.environ.get(ENV_VAR)
    if not spec:
        return None
    where, _, fault = spec.partition(":")
    if where not in POINTS or fault not in FAULTS:
        raise ValueError(
            f"{ENV_VAR} must be <point>:<fault> with point one of {', '.join(POINTS)} and fault one of "
            f"{', '.join(FAULTS)}; got {spec!r}."
        )
    return fault if where == point else None


def _inject(point: str, fault: str) -> None:
    log.warning("fault injection: %s at %s", fault, point)
    if fault == "ENOSPC":
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), f"<{ENV_VAR} at {point}>")
    os.kill(os.getpid(), getattr(signal, fault))


def reach(point: str) -> None:
    """Inject the fault requested at ``point``, if any, now."""
    fault = _requested(point)
    if fault is not None:
        _inject(point, fault)


def reach_soon(point: str, delay: float = EMBED_DELAY) -> None:
    """Inject the fault requested at ``point``, if any, ``delay`` seconds from now.

    The signal is sent from a daemon thread. Python runs its handler in the main thread,
    inside the work that follows this call. ``ENOSPC`` has no meaning here and is raised at once.
    """
    fault = _requested(point)
    if fault is None:
        return
    if fault == "ENOSPC":
        _inject(point, fault)
    timer = threading.Timer(delay, _inject, args=(point, fault))
    timer.daemon = True
    timer.start()


def training_callbacks() -> list:
    """Return a Keras callback for the ``train`` point when a fault is requested there, else nothing."""
    if _requested("train") is None:
        return []
    import keras

    class TrainingFault(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                reach("train")

    return [TrainingFault()]
