"""Tests for the 2-D embedders on a few hundred scikit-learn digits.

umap-learn and trimap compile numba code the first time they run in a process, which took
about 10 s each on a 2-CPU machine.
"""

import logging
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from src.embedding import EMBEDDERS, INDUCTIVE_EMBEDDERS, Embedding, embed, validate_embedder_config
from src.errors import ConfigError, DataError
from src.scoring import knn_accuracy

ROOT = Path(__file__).resolve().parents[1]
EMBEDDER_CONF = ROOT / "conf" / "embedder"

# Fewer iterations than the shipped configs, still enough for a clear map of 300 digits.
SHRINK = {
    "pca": {},
    "tsne": {"n_iter": 250, "early_exaggeration_iter": 125},
    "umap": {"n_epochs": 100},
    "trimap": {"n_iters": 150},
}

SUPPORTED = [(name, "transductive") for name in EMBEDDERS] + [
    (name, "inductive") for name in INDUCTIVE_EMBEDDERS
]


def _embedder_cfg(name, **overrides):
    """Load the shipped config of one embedder, shrunk for tests, with overrides on top."""
    config = OmegaConf.load(EMBEDDER_CONF / f"{name}.yaml")
    return OmegaConf.merge(config, SHRINK[name], overrides)


@pytest.fixture(scope="module")
def digits():
    """300 stratified, standardised digits split 210 / 90: X_train, X_test, y_train, y_test."""
    X, y = load_digits(return_X_y=True)
    X, _, y, _ = train_test_split(X, y, train_size=300, stratify=y, random_state=0)
    X = StandardScaler().fit_transform(X)
    return train_test_split(X, y, test_size=90, stratify=y, random_state=0)


def test_shipped_configs_are_valid():
    for name in EMBEDDERS:
        config = OmegaConf.load(EMBEDDER_CONF / f"{name}.yaml")

        validate_embedder_config(config)
        assert config.name == name
        assert config.protocol == "transductive"


@pytest.mark.parametrize(
    ("name", "override", "key", "value"),
    [
        ("pca", "embedder.whiten=true", "whiten", True),
        ("tsne", "embedder.perplexity=50", "perplexity", 50),
        ("umap", "embedder.n_neighbors=30", "n_neighbors", 30),
        ("trimap", "embedder.n_inliers=20", "n_inliers", 20),
    ],
)
def test_composed_config_takes_flat_override(compose_config, name, override, key, value):
    config = compose_config([f"embedder={name}", override])

    validate_embedder_config(config.embedder)
    assert config.embedder[key] == value


def test_unknown_embedder_raises():
    message = re.escape("embedder must be one of pca, tsne, umap, trimap; got 'isomap'")
    with pytest.raises(ConfigError, match=message):
        validate_embedder_config({"name": "isomap", "protocol": "transductive"})


def test_unknown_protocol_raises():
    message = re.escape("embedder.protocol must be one of transductive, inductive; got 'both'")
    with pytest.raises(ConfigError, match=message):
        validate_embedder_config({"name": "pca", "protocol": "both"})


def test_trimap_inductive_rejected_by_validation():
    with pytest.raises(ConfigError, match="TriMAP has no out-of-sample method") as raised:
        validate_embedder_config(_embedder_cfg("trimap", protocol="inductive"))

    assert "`embedder.protocol=transductive`" in str(raised.value)
    assert "pca, tsne, umap" in str(raised.value)


def test_trimap_inductive_rejected_by_embed(digits):
    X_train, X_test, _, _ = digits

    with pytest.raises(ConfigError, match="TriMAP has no out-of-sample method"):
        embed(X_train, X_test, _embedder_cfg("trimap", protocol="inductive"), seed=0)


@pytest.mark.parametrize(
    ("name", "key", "value", "message"),
    [
        ("tsne", "perplexity", -5, "embedder.perplexity must be > 0; got -5"),
        ("tsne", "learning_rate", 0, 'embedder.learning_rate must be "auto" or > 0; got 0'),
        ("tsne", "n_iter", 0, "embedder.n_iter must be a whole number >= 1; got 0"),
        ("umap", "n_neighbors", 1, "embedder.n_neighbors must be a whole number >= 2; got 1"),
        ("umap", "n_neighbors", 7.5, "embedder.n_neighbors must be a whole number >= 2; got 7.5"),
        ("umap", "min_dist", -0.1, "embedder.min_dist must be >= 0; got -0.1"),
        ("umap", "min_dist", 2.0, "embedder.min_dist must be <= embedder.spread (1.0); got 2.0"),
        ("umap", "n_epochs", 0, "embedder.n_epochs must be null or a whole number >= 1; got 0"),
        ("trimap", "n_inliers", 0, "embedder.n_inliers must be a whole number >= 1; got 0"),
        ("trimap", "n_iters", 0, "embedder.n_iters must be a whole number >= 1; got 0"),
        ("trimap", "distance", "cityblock", "embedder.distance must be one of euclidean, man"),
        ("pca", "whiten", "yes", "embedder.whiten must be true or false; got 'yes'"),
    ],
)
def test_out_of_range_parameter_raises(name, key, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_embedder_config(_embedder_cfg(name, **{key: value}))


@pytest.mark.parametrize("key", ["n_components", "random_state", "verbose"])
def test_parameter_set_by_embed_raises(key):
    with pytest.raises(ConfigError, match=re.escape(f"embedder.{key} cannot be set because it")):
        validate_embedder_config(_embedder_cfg("umap", **{key: 3}))


def test_parameter_unknown_to_library_raises(digits):
    X_train, X_test, _, _ = digits

    message = re.escape("embedder.perplexity is not a parameter of embedder=pca; got 30")
    with pytest.raises(ConfigError, match=message):
        embed(X_train, X_test, _embedder_cfg("pca", perplexity=30), seed=0)


@pytest.mark.parametrize("name", EMBEDDERS)
def test_known_params_match_installed_library(name):
    import inspect

    from src.embedding import KNOWN_PARAMS, _import_estimator

    installed = set(inspect.signature(_import_estimator(name)).parameters)
    assert installed - {"n_components", "n_dims", "random_state", "verbose"} == KNOWN_PARAMS[name]


@pytest.mark.parametrize(("name", "protocol"), SUPPORTED)
def test_embed_returns_finite_float32_coordinates(digits, name, protocol):
    X_train, X_test, _, _ = digits

    result = embed(X_train, X_test, _embedder_cfg(name, protocol=protocol), seed=0)

    assert isinstance(result, Embedding)
    assert result.train.shape == (210, 2)
    assert result.test.shape == (90, 2)
    assert result.train.dtype == np.float32
    assert result.test.dtype == np.float32
    assert np.isfinite(result.train).all()
    assert np.isfinite(result.test).all()
    assert result.adjusted == {}


@pytest.mark.parametrize(("name", "protocol"), SUPPORTED)
def test_embed_is_deterministic_for_seed(digits, name, protocol):
    X_train, X_test, _, _ = digits
    config = _embedder_cfg(name, protocol=protocol)

    first = embed(X_train, X_test, config, seed=0)
    second = embed(X_train, X_test, config, seed=0)

    np.testing.assert_array_equal(first.train, second.train)
    np.testing.assert_array_equal(first.test, second.test)


@pytest.mark.parametrize("name", ["tsne", "umap", "trimap"])
def test_embed_map_changes_with_seed(digits, name):
    X_train, X_test, _, _ = digits
    config = _embedder_cfg(name)

    first = embed(X_train, X_test, config, seed=0)
    other = embed(X_train, X_test, config, seed=1)

    assert not np.array_equal(first.train, other.train)


@pytest.mark.parametrize("name", INDUCTIVE_EMBEDDERS)
def test_inductive_map_ignores_test_points(digits, name):
    X_train, X_test, _, _ = digits
    config = _embedder_cfg(name, protocol="inductive")

    with_all = embed(X_train, X_test, config, seed=0)
    with_half = embed(X_train, X_test[:45], config, seed=0)

    np.testing.assert_array_equal(with_all.train, with_half.train)


@pytest.mark.parametrize("name", ["tsne", "umap"])
def test_transductive_map_separates_digits(digits, name):
    X_train, X_test, y_train, y_test = digits

    result = embed(X_train, X_test, _embedder_cfg(name), seed=0)
    accuracy = knn_accuracy(result.train, y_train, result.test, y_test, [5])

    assert accuracy[5] > 0.8


@pytest.mark.parametrize(
    ("name", "key", "requested", "used"),
    [
        ("tsne", "perplexity", 30, 9),
        ("umap", "n_neighbors", 50, 29),
        ("trimap", "n_inliers", 40, 25),
    ],
)
def test_tiny_input_lowers_parameter_with_warning(digits, caplog, name, key, requested, used):
    X_train, X_test, _, _ = digits
    config = _embedder_cfg(name, **{key: requested})

    with caplog.at_level(logging.WARNING, logger="src.embedding"):
        result = embed(X_train[:25], X_test[:5], config, seed=0)

    assert result.adjusted == {key: (requested, used)}
    assert result.train.shape == (25, 2)
    assert result.test.shape == (5, 2)
    assert np.isfinite(result.train).all()
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"embedder.{key}={requested}" in warnings[0].getMessage()
    assert f"using {used}" in warnings[0].getMessage()


def test_too_few_points_raise(digits):
    X_train, X_test, _, _ = digits

    message = re.escape("umap needs at least 10 points to fit a map; got 6 training points")
    with pytest.raises(DataError, match=message):
        embed(X_train[:6], X_test[:20], _embedder_cfg("umap", protocol="inductive"), seed=0)


def test_non_finite_input_raises(digits):
    X_train, X_test, _, _ = digits
    X_train = X_train.copy()
    X_train[3, 2] = np.nan

    with pytest.raises(DataError, match=re.escape("X_train contains NaN or infinite values")):
        embed(X_train, X_test, _embedder_cfg("pca"), seed=0)


def test_invalid_seed_raises(digits):
    X_train, X_test, _, _ = digits

    message = re.escape("seed must be a whole number in [0, 2**32); got -1")
    with pytest.raises(ConfigError, match=message):
        embed(X_train, X_test, _embedder_cfg("pca"), seed=-1)


def test_import_loads_no_embedding_library():
    heavy = ["numba", "umap", "openTSNE", "trimap", "tensorflow"]
    code = f"import sys, src.embedding; print([name for name in {heavy!r} if name in sys.modules])"

    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )

    assert completed.stdout.strip() == "[]"
