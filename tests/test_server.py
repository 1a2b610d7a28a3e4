"""A sweep logged to a real `mlflow server` on 127.0.0.1, checked through its REST API and its UI."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from src.paths import PROJECT_ROOT

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Start `mlflow server` on a free loopback port with its store in a temporary folder."""
    folder = tmp_path_factory.mktemp("server")
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server",
            "--host", "127.0.0.1", "--port", str(port),
            "--backend-store-uri", f"sqlite:///{folder}/mlflow.db",
            "--artifacts-destination", str(folder / "artifacts"),
            "--workers", "1",
        ],
        stdout=open(folder / "server.log", "w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(1)
    else:
        process.terminate()
        pytest.fail(f"mlflow server did not start within 180 s; see {folder / 'server.log'}")
    yield url
    process.terminate()
    process.wait(timeout=30)


def _post(url: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{url}{path}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def _get(url: str, path: str) -> dict:
    with urllib.request.urlopen(f"{url}{path}", timeout=30) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def sweep_on_server(server, tmp_path_factory):
    """Run a two-job sweep against the server; return the experiment id, its runs and the output.

    The URI carries a user name and password, which the server ignores; none may reach a run.
    """
    folder = tmp_path_factory.mktemp("sweep")
    uri_with_password = server.replace("http://", "http://alice:s3cret@")
    overrides = ["data=digits", "model.hidden_units=[32,16]", "train.epochs=1", "progress=false"]
    result = subprocess.run(
        [
            sys.executable, "-m", "src.main", "-m", "embedder=pca,tsne", *overrides,
            f"tracking.uri={uri_with_password}", f"hydra.sweep.dir={folder}/multirun", f"cache.dir={folder}/cache",
        ],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    experiment = _get(server, "/api/2.0/mlflow/experiments/get-by-name?experiment_name=layer-maps")["experiment"]
    runs = _post(server, "/api/2.0/mlflow/runs/search", {"experiment_ids": [experiment["experiment_id"]]})["runs"]
    return experiment["experiment_id"], runs, result.stdout + result.stderr


def _tags(run: dict) -> dict:
    return {tag["key"]: tag["value"] for tag in run["data"].get("tags", [])}


def test_sweep_runs_reach_server(server, sweep_on_server):
    _, runs, _ = sweep_on_server
    jobs = [run for run in runs if _tags(run).get("sweep.role") != "parent"]
    parents = [run for run in runs if _tags(run).get("sweep.role") == "parent"]
    assert sorted(_tags(run)["embedder"] for run in jobs) == ["pca", "tsne"]
    assert len(parents) == 1
    for run in jobs:
        assert run["info"]["status"] == "FINISHED"
        assert _tags(run)["mlflow.parentRunId"] == parents[0]["info"]["run_id"]
        metrics = {metric["key"] for metric in run["data"]["metrics"]}
        assert len([key for key in metrics if key.startswith("knn_acc")]) == 18
        listing = _get(server, f"/api/2.0/mlflow/artifacts/list?run_id={run['info']['run_id']}&path=scatter")
        assert len(listing["files"]) == 3


def test_password_never_recorded_or_printed(sweep_on_server):
    _, runs, output = sweep_on_server

    assert len(runs) == 3
    leaks = [
        entry for run in runs for kind in ("params", "tags")
        for entry in run["data"].get(kind, []) if "s3cret" in entry["value"]
    ]
    assert leaks == []
    assert "s3cret" not in json.dumps(runs)
    assert "s3cret" not in output


def test_ui_shows_runs(server, sweep_on_server, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Chromium is not installed (Debian package chromium); .ci/run installs it")
    experiment_id, runs, _ = sweep_on_server
    page = f"{server}/#/experiments/{experiment_id}/runs"
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1600,1000", "--virtual-time-budget=20000",
    ]
    screenshot = tmp_path / "experiment.png"
    subprocess.run([browser, *flags, f"--screenshot={screenshot}", page], capture_output=True, timeout=180, check=False)
    assert screenshot.stat().st_size > 10_000

    dom = subprocess.run(
        [browser, *flags, "--dump-dom", page], capture_output=True, text=True, timeout=180, check=False
    ).stdout
    (tmp_path / "experiment.html").write_text(dom)
    # The table lists the sweep's parent run, with the job runs nested (collapsed) under it.
    (parent,) = [run for run in runs if _tags(run).get("sweep.role") == "parent"]
    assert parent["info"]["run_name"] in dom
    assert f"<strong>{len(runs)}</strong> matching runs" in dom
