"""Config validation: every rule names the key, the rule and the value received."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from src.errors import ConfigError
from src.validation import validate_config


@pytest.fixture
def validate(compose_config):
    """Compose the real config with overrides and validate it as main does."""

    def _validate(overrides=()):
        cfg = compose_config(overrides)
        validate_config(OmegaConf.to_container(cfg, resolve=True))

    return _validate


@pytest.mark.parametrize("embedder", ["pca", "tsne", "umap", "trimap"])
@pytest.mark.parametrize("data", ["mnist_sample", "digits", "mnist"])
def test_default_configs_are_valid(validate, embedder, data):
    validate([f"embedder={embedder}", f"data={data}"])


BAD_CONFIGS = [
    (["dropout=1.0"], r"dropout must be a number in \[0, 1\); got 1.0"),
    (["dropout=-0.1"], r"dropout must be a number in \[0, 1\); got -0.1"),
    (["model.hidden_units=[]"], r"model.hidden_units must be a non-empty list .*; got \[\]"),
    (["model.hidden_units=[256,0]"], r"model.hidden_units must be .*; got \[256, 0\]"),
    (["model.activation=relux"], r"model.activation must be one of .*relu.*; got 'relux'"),
    (["train.epochs=0"], r"train.epochs must be a whole number >= 1; got 0"),
    (["train.batch_size=0"], r"train.batch_size must be a whole number >= 1; got 0"),
    (["train.optimizer=adamm"], r"train.optimizer must be one of .*adam.*; got 'adamm'"),
    (["train.learning_rate=0"], r"train.learning_rate must be a number > 0; got 0"),
    (["knn.k=[0,5]"], r"knn.k .*got \[0, 5\]"),
    (["knn.k=[]"], r"knn.k .*got \[\]"),
    (["knn.k=[4000]"], r"knn.k .*4000"),
    (["data=digits", "knn.k=[3,2000]"], r"knn.k .*2000"),
    (["embedder.name=isomap"], r"embedder.*pca.*tsne.*umap.*trimap.*isomap"),
    (["embedder=trimap", "embedder.protocol=inductive"], r"(?s)TriMAP.*embedder.protocol=transductive"),
    (["embedder.protocol=online"], r"embedder.protocol.*transductive.*inductive.*online"),
    (["data=mnist", "data.path=no/such/mnist.npz"], r"data.path .*'no/such/mnist.npz'.*does not exist"),
    (["data=digits", "data.path=x.npz"], r"data.path is read only by data=mnist"),
    (["data.n_train=5"], r"data.n_train must be at least 10 .*got 5"),
    (["data.n_train=4001"], r"data.n_train must be at most 4000 for data=mnist_sample; got 4001"),
    (["data.test_size=1.5"], r"data.test_size must be a share in \(0, 1\) .*got 1.5"),
    (["data.val_size=1"], r"data.val_size must be a number in \[0, 1\) or null; got 1"),
    (["seed=-1"], r"seed must be a whole number .*got -1"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD_CONFIGS, ids=[" ".join(o) for o, _ in BAD_CONFIGS])
def test_bad_config_is_rejected(validate, overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate(overrides)


def test_all_broken_rules_reported_together(validate):
    with pytest.raises(ConfigError) as error:
        validate(["dropout=2", "train.epochs=0"])
    assert "dropout must be" in str(error.value)
    assert "train.epochs must be" in str(error.value)
