"""The MLP and the activation reader, on small real data (scikit-learn's 8x8 digits)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_digits

from src.activations import extract_activations
from src.model import build_mlp, hidden_layer_names, train_mlp

TRAIN = {"epochs": 2, "batch_size": 64, "optimizer": "adam", "learning_rate": 0.01}
MODEL = {"hidden_units": [32, 16], "activation": "relu"}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    return X[:600], y[:600], X[600:800], y[600:800]


@pytest.fixture(scope="module")
def trained(digits):
    X, y, X_test, y_test = digits
    return train_mlp(X[:450], y[:450], X[450:], y[450:], X_test, y_test, MODEL, TRAIN, dropout=0.5, seed=0, progress=False)


@pytest.mark.parametrize("hidden_units", [[256, 64], [64], [128, 64, 32]])
def test_build_mlp_layer_shapes(hidden_units):
    model = build_mlp(784, 10, hidden_units, dropout=0.5)
    assert model.input_shape == (None, 784)
    assert model.output_shape == (None, 10)
    for name, units in zip(hidden_layer_names(hidden_units), hidden_units):
        assert model.get_layer(name).output.shape == (None, units)


def test_build_mlp_without_dropout_has_no_dropout_layers():
    model = build_mlp(64, 10, [16, 8], dropout=0.0)
    assert not [layer for layer in model.layers if "dropout" in layer.name]


def test_train_mlp_records_every_epoch(trained):
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert len(trained.history[key]) == TRAIN["epochs"], key
    assert trained.layer_names == ["hidden_1", "hidden_2"]
    assert 0.0 <= trained.test_accuracy <= 1.0


def test_train_mlp_learns_digits(digits):
    X, y, X_test, y_test = digits
    longer = {**TRAIN, "epochs": 15}
    result = train_mlp(X, y, X[:0], y[:0], X_test, y_test, MODEL, longer, dropout=0.2, seed=0, progress=False)
    assert result.test_accuracy > 0.85
    assert "val_loss" not in result.history


def test_train_mlp_same_seed_same_weights(digits, trained):
    X, y, X_test, y_test = digits
    again = train_mlp(X[:450], y[:450], X[450:], y[450:], X_test, y_test, MODEL, TRAIN, dropout=0.5, seed=0, progress=False)
    assert again.history == trained.history
    for before, after in zip(trained.model.get_weights(), again.model.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_extract_activations_shapes(digits, trained):
    X_test = digits[2]
    (activations,) = extract_activations(trained.model, trained.layer_names, X_test, batch_size=64)
    assert list(activations) == ["input", "hidden_1", "hidden_2"]
    assert activations["input"].shape == (200, 64)
    assert activations["hidden_1"].shape == (200, 32)
    assert activations["hidden_2"].shape == (200, 16)
    assert all(value.dtype == np.float32 for value in activations.values())


def test_extract_activations_match_forward_pass_without_dropout(digits, trained):
    X_test = digits[2]
    (activations,) = extract_activations(trained.model, trained.layer_names, X_test, batch_size=64)
    kernel_1, bias_1 = trained.model.get_layer("hidden_1").get_weights()
    kernel_2, bias_2 = trained.model.get_layer("hidden_2").get_weights()
    hidden_1 = np.maximum(X_test @ kernel_1 + bias_1, 0)
    hidden_2 = np.maximum(hidden_1 @ kernel_2 + bias_2, 0)
    np.testing.assert_allclose(activations["hidden_1"], hidden_1, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(activations["hidden_2"], hidden_2, rtol=1e-4, atol=1e-5)


def test_extract_activations_of_several_arrays(digits, trained):
    X, _, X_test, _ = digits
    train, test = extract_activations(trained.model, trained.layer_names, X[:100], X_test)
    assert train["hidden_2"].shape == (100, 16)
    assert test["hidden_2"].shape == (200, 16)
    np.testing.assert_array_equal(train["input"], X[:100])


def test_extract_activations_repeatable(digits, trained):
    X_test = digits[2]
    (first,) = extract_activations(trained.model, trained.layer_names, X_test, batch_size=64)
    (second,) = extract_activations(trained.model, trained.layer_names, X_test, batch_size=7)
    for layer in first:
        np.testing.assert_allclose(first[layer], second[layer], rtol=1e-5, atol=1e-6)
