"""The seed notebook's computation as one script: the baseline that the sweep benchmark times.

It trains the MLP once. Then, for raw pixels and both hidden layers, it runs four maps:
PCA fitted on the training points, then transform; scikit-learn's t-SNE fitted on the
training points and again, separately, on the test points; UMAP with ``random_state=42``,
fit then transform; and TriMAP fitted separately on the training and the test points.
Each map is scored with one ``KNeighborsClassifier`` per k. The script is kept as written,
flaws included. A map fitted on the test points alone has axes unrelated to the training
map, so its kNN scores are near chance.

    python benchmarks/seed_pipeline.py DATA.npz RESULTS.json
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

KS = (3, 5, 10)


def train_network(X_train, y_train):
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(shape=(784,)),
            keras.layers.Dense(256, activation="relu", name="hidden_1"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(64, activation="relu", name="hidden_2"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(X_train, y_train, epochs=20, batch_size=128, validation_split=0.25, verbose=0)
    return model


def layer_outputs(model, X):
    import keras

    reader = keras.Model(model.inputs, [model.get_layer("hidden_1").output, model.get_layer("hidden_2").output])
    hidden_1, hidden_2 = reader.predict(X, verbose=0)
    return {"input": X, "hidden_1": hidden_1, "hidden_2": hidden_2}


def embed_all(name, X_train, X_test):
    if name == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2).fit(X_train)
        return pca.transform(X_train), pca.transform(X_test)
    if name == "tsne":
        from sklearn.manifold import TSNE

        return TSNE(n_components=2).fit_transform(X_train), TSNE(n_components=2).fit_transform(X_test)
    if name == "umap":
        import umap

        mapper = umap.UMAP(random_state=42).fit(X_train)
        return mapper.embedding_, mapper.transform(X_test)
    import trimap

    return trimap.TRIMAP().fit_transform(X_train), trimap.TRIMAP().fit_transform(X_test)


def knn_scores(train, y_train, test, y_test):
    from sklearn.neighbors import KNeighborsClassifier

    return {k: KNeighborsClassifier(n_neighbors=k).fit(train, y_train).score(test, y_test) for k in KS}


def main(data_path, results_path):
    data = np.load(data_path, allow_pickle=False)
    X_train = data["x_train"].reshape(len(data["x_train"]), -1).astype(np.float32) / 255
    X_test = data["x_test"].reshape(len(data["x_test"]), -1).astype(np.float32) / 255
    y_train, y_test = data["y_train"], data["y_test"]

    seconds = {}
    start = time.perf_counter()
    model = train_network(X_train, y_train)
    train_layers, test_layers = layer_outputs(model, X_train), layer_outputs(model, X_test)
    seconds["train"] = time.perf_counter() - start

    accuracy = {}
    for name in ("pca", "tsne", "umap", "trimap"):
        start = time.perf_counter()
        for layer in ("input", "hidden_1", "hidden_2"):
            train, test = embed_all(name, train_layers[layer], test_layers[layer])
            for k, score in knn_scores(train, y_train, test, y_test).items():
                accuracy[f"{name}/{layer}/k{k}"] = score
        seconds[name] = time.perf_counter() - start

    with open(results_path, "w") as file:
        json.dump({"seconds": seconds, "accuracy": accuracy}, file, indent=2)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
