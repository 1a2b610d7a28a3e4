"""Build and train the MLP whose hidden layers the harness maps.

TensorFlow is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from src import faults

log = logging.getLogger(__name__)

# Every dataset here contains the digits 0-9.
N_CLASSES = 10

# Names that keras.optimizers.get and keras.activations.get accept (Keras 3.15), checked
# before TensorFlow is imported so a typo fails in a second, not after the import.
OPTIMIZERS = ("adadelta", "adafactor", "adagrad", "adam", "adamax", "adamw", "ftrl", "lion", "nadam", "rmsprop", "sgd")
ACTIVATIONS = (
    "celu", "elu", "exponential", "gelu", "hard_sigmoid", "hard_silu", "hard_swish", "hard_tanh",
    "leaky_relu", "linear", "log_sigmoid", "mish", "relu", "relu6", "selu", "sigmoid", "silu",
    "softplus", "softsign", "swish", "tanh",
)


@dataclass
class TrainingResult:
    """The trained network, its per-epoch curves and its test-set scores."""

    model: object
    history: dict[str, list[float]]
    test_loss: float
    test_accuracy: float
    seconds: float
    layer_names: list[str] = field(default_factory=list)


def hidden_layer_names(hidden_units: Sequence[int]) -> list[str]:
    """Return the names of the hidden layers: ``hidden_1``, ``hidden_2``, ..."""
    return [f"hidden_{i}" for i in range(1, len(hidden_units) + 1)]


def set_global_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow, and make TensorFlow's ops deterministic."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    # Same seed, same config, same machine: same weights and metrics. Costs little on a CPU.
    tf.config.experimental.enable_op_determinism()


def build_mlp(
    n_features: int,
    n_classes: int,
    hidden_units: Sequence[int],
    activation: str = "relu",
    dropout: float = 0.5,
):
    """Build an MLP: input, then Dense + Dropout per hidden layer, then a softmax layer.

    Parameters
    ----------
    n_features : int
        Width of the flattened input, e.g. 784 for 28x28 digits.
    n_classes : int
        Number of output classes.
    hidden_units : sequence of int
        Units of each hidden layer, in order.
    activation : str, default="relu"
        Keras activation of the hidden layers.
    dropout : float, default=0.5
        Dropout rate after each hidden layer, in [0, 1). 0 adds no Dropout layer.

    Returns
    -------
    keras.Model
        Uncompiled. The Dense layers are named ``hidden_1``, ``hidden_2``, ... and
        ``output``, so their post-activation outputs can be read by name.
    """
    import keras

    inputs = keras.Input(shape=(n_features,), name="input")
    x = inputs
    for name, units in zip(hidden_layer_names(hidden_units), hidden_units):
        x = keras.layers.Dense(int(units), activation=activation, name=name)(x)
        if dropout > 0:
            x = keras.layers.Dropout(dropout, name=f"{name}_dropout")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name="output")(x)
    return keras.Model(inputs, outputs, name="mlp")


def _epoch_logger(epochs: int):
    """Return a Keras callback that logs one INFO line per epoch."""
    import keras

    class EpochLogger(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            values = "  ".join(f"{key}={value:.4f}" for key, value in sorted(logs.items()))
            log.info("epoch %d/%d  %s", epoch + 1, epochs, values)

    return EpochLogger()


def train_mlp(
    X_fit: np.ndarray,
    y_fit: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    model_cfg: Mapping,
    train_cfg: Mapping,
    dropout: float,
    seed: int,
    progress: bool = True,
    callbacks: Sequence = (),
) -> TrainingResult:
    """Build, compile and train the MLP, then score it on the test set.

    Parameters
    ----------
    X_fit, y_fit : ndarray of shape (n_fit, n_features) and (n_fit,)
        Points the network is fitted on.
    X_val, y_val : ndarray of shape (n_val, n_features) and (n_val,)
        Points for the validation curves only. May be empty.
    X_test, y_test : ndarray of shape (n_test, n_features) and (n_test,)
        Points for the final test loss and accuracy.
    model_cfg : mapping
        ``hidden_units`` and ``activation``.
    train_cfg : mapping
        ``epochs``, ``batch_size``, ``optimizer`` (a Keras optimizer name) and ``learning_rate``.
    dropout : float
        Dropout rate after each hidden layer.
    seed : int
        Seed for the weights, the dropout masks and the batch order.
    progress : bool, default=True
        Log one INFO line per epoch.
    callbacks : sequence of keras.callbacks.Callback, default=()
        More callbacks for ``model.fit``, e.g. one that records activations per epoch.

    Returns
    -------
    TrainingResult
        ``history`` maps ``loss``, ``accuracy`` and, with validation points,
        ``val_loss`` and ``val_accuracy`` to one value per epoch.
    """
    import keras

    start = time.perf_counter()
    set_global_seed(seed)
    model = build_mlp(
        n_features=X_fit.shape[1],
        n_classes=N_CLASSES,
        hidden_units=list(model_cfg["hidden_units"]),
        activation=str(model_cfg["activation"]),
        dropout=float(dropout),
    )
    optimizer = keras.optimizers.get(str(train_cfg["optimizer"]))
    optimizer.learning_rate = float(train_cfg["learning_rate"])
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    epochs = int(train_cfg["epochs"])
    validation = (X_val, y_val) if len(X_val) else None
    fit = model.fit(
        X_fit,
        y_fit,
        validation_data=validation,
        epochs=epochs,
        batch_size=int(train_cfg["batch_size"]),
        shuffle=True,
        verbose=0,
        callbacks=([_epoch_logger(epochs)] if progress else []) + list(callbacks) + faults.training_callbacks(),
    )
    history = {key: [float(v) for v in values] for key, values in fit.history.items()}

    test_loss, test_accuracy = model.evaluate(X_test, y_test, batch_size=1024, verbose=0)
    seconds = time.perf_counter() - start
    log.info("test loss %.4f, test accuracy %.4f", test_loss, test_accuracy)
    return TrainingResult(
        model=model,
        history=history,
        test_loss=float(test_loss),
        test_accuracy=float(test_accuracy),
        seconds=seconds,
        layer_names=hidden_layer_names(model_cfg["hidden_units"]),
    )
