"""Read the activations of every hidden layer with one multi-output model."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np

log = logging.getLogger(__name__)


def extract_activations(
    model,
    layer_names: Sequence[str],
    *arrays: np.ndarray,
    batch_size: int = 1024,
) -> list[dict[str, np.ndarray]]:
    """Return the input and the post-activation output of each named layer, per array.

    One Keras model maps the input to all requested layers at once, and it runs
    in inference mode, so dropout is off and repeated calls give the same values.
    Passing the training and the test points in one call builds that model once.

    Parameters
    ----------
    model : keras.Model
        The trained network, with Dense layers named as in ``layer_names``.
    layer_names : sequence of str
        Layers to read, e.g. ``["hidden_1", "hidden_2"]``.
    *arrays : ndarray of shape (n_samples, n_features)
        Points to pass through the network, e.g. ``X_train, X_test``.
    batch_size : int, default=1024
        Points per forward pass; bounds the memory of the extraction.

    Returns
    -------
    list of dict of str to ndarray of shape (n_samples, n_units)
        One dict per array: ``"input"`` maps to the array itself, then one float32
        array per layer, in the order of ``layer_names``.
    """
    import keras

    start = time.perf_counter()
    outputs = [model.get_layer(name).output for name in layer_names]
    reader = keras.Model(model.input, outputs, name="activation_reader")

    results = []
    for X in arrays:
        activations = {"input": np.asarray(X, dtype=np.float32)}
        batches = [_read_batch(reader, X[start : start + batch_size]) for start in range(0, len(X), batch_size)]
        for index, name in enumerate(layer_names):
            activations[name] = np.concatenate([batch[index] for batch in batches]).astype(np.float32)
        results.append(activations)

    widths = ", ".join(f"{name} {value.shape[1]}" for name, value in results[0].items())
    n_points = sum(len(X) for X in arrays)
    log.info("extracted activations of %d points (%s) in %.1f s", n_points, widths, time.perf_counter() - start)
    return results


def _read_batch(reader, X_batch: np.ndarray) -> list[np.ndarray]:
    """Run one batch eagerly in inference mode.

    An eager call, unlike ``Model.predict``, compiles no graph, so batches of a new
    size (the last one of each array) trigger no TensorFlow retracing warnings.
    """
    import keras

    outputs = reader(X_batch, training=False)
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    return [keras.ops.convert_to_numpy(output) for output in outputs]
