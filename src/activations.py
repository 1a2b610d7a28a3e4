"""Read the activations of every hidden layer with one multi-output model."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np

log = logging.getLogger(__name__)


def extract_activations(
    model,
    X: np.ndarray,
    layer_names: Sequence[str],
    batch_size: int = 1024,
) -> dict[str, np.ndarray]:
    """Return the input and the post-activation output of each named layer.

    One Keras model maps the input to all requested layers at once, and it runs
    in inference mode, so dropout is off and repeated calls give the same values.

    Parameters
    ----------
    model : keras.Model
        The trained network, with Dense layers named as in ``layer_names``.
    X : ndarray of shape (n_samples, n_features)
        Points to pass through the network.
    layer_names : sequence of str
        Layers to read, e.g. ``["hidden_1", "hidden_2"]``.
    batch_size : int, default=1024
        Points per forward pass; bounds the memory of the extraction.

    Returns
    -------
    dict of str to ndarray of shape (n_samples, n_units)
        ``"input"`` maps to ``X`` itself, then one float32 array per layer, in order.
    """
    import keras

    start = time.perf_counter()
    outputs = [model.get_layer(name).output for name in layer_names]
    reader = keras.Model(model.inputs, outputs, name="activation_reader")
    values = reader.predict(X, batch_size=batch_size, verbose=0)
    if len(layer_names) == 1:
        values = [values]

    activations = {"input": np.asarray(X, dtype=np.float32)}
    for name, value in zip(layer_names, values):
        activations[name] = np.asarray(value, dtype=np.float32)
    shapes = ", ".join(f"{name} {value.shape[1]}" for name, value in activations.items())
    log.info("extracted activations of %d points (%s) in %.1f s", len(X), shapes, time.perf_counter() - start)
    return activations
