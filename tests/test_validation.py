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
    (["dropout=1.0"], r"dropout must be a number in \[0, 1\), .*; got 1.0\. Set e\.g\. dropout=0\.5"),
    (["dropout=-0.1"], r"dropout must be a number in \[0, 1\), .*; got -0.1"),
    (["model.hidden_units=[]"], r"model.hidden_units must be a non-empty list .*; got \[\]"),
    (["model.hidden_units=[256,0]"], r"model.hidden_units must be .*; got \[256, 0\]"),
    (["model.activation=relux"], r"model.activation must be one of .*relu.*; got 'relux'"),
    (["train.epochs=0"], r"train.epochs must be a whole number >= 1; got 0"),
    (["train.batch_size=0"], r"train.batch_size must be a whole number >= 1; got 0"),
    (["train.optimizer=adamm"], r"train.optimizer must be one of .*adam.*; got 'adamm'"),
    (["train.learning_rate=0"], r"train.learning_rate must be a number > 0; got 0"),
    (["knn.k=[0,5]"], r"knn.k .*got \[0, 5\]"),
    (["knn.k=[]"], r"knn.k .*got \[\]"),
    (["knn.k=[3,3]"], r"knn.k must not repeat a value; got \[3, 3\]"),
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
    (["+train.epoch=5"], r"train.epoch is not a config key; got train.epoch=5\. Did you mean train\.epochs \(without \+\)\? Known keys of train: .*epochs"),
    (["+embedder.nneighbors=30"], r"embedder.nneighbors is not a parameter of embedder=umap; got 30. .*n_neighbors"),
    (["data.val_size=0.999"], r"data.val_size=0.999 splits 4000 training digits into 4 to fit and 3996 to validate"),
    (["data=digits", "data.n_train=20"], r"data.val_size=0.25 splits 20 training digits into 15 to fit and 5"),
    (["tracking.uri=my_runs"], r"tracking.uri must start with one of sqlite://.*got 'my_runs'.*sqlite:///"),
    (["tracking.uri=foo://bar"], r"tracking.uri must start with one of .*got 'foo://bar'"),
    (["tracking.uri=sqlite:////proc/runs/mlflow.db"], r"tracking.uri='sqlite:////proc/runs/mlflow.db' needs the folder /proc/runs, which cannot be created because /proc does not accept new files .*Set tracking.uri to a folder you can write"),
    (["cache.dir=/proc/layer-maps-cache"], r"cache.dir='/proc/layer-maps-cache' needs the folder .*, which cannot be created because /proc .*cache.enabled=false"),
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


def test_cache_dir_that_is_a_file_is_rejected(validate, tmp_path):
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("")
    with pytest.raises(ConfigError, match=r"cache.dir=.* needs the folder .*cache, but .*cache is a file"):
        validate([f"cache.dir={not_a_folder}"])


def test_tracking_uri_under_a_file_is_rejected(validate, tmp_path):
    (tmp_path / "store").write_text("")
    with pytest.raises(ConfigError, match=r"tracking.uri=.*store/mlflow.db' needs the folder .*store, but .*store is a file"):
        validate([f"tracking.uri=sqlite:///{tmp_path}/store/mlflow.db"])
