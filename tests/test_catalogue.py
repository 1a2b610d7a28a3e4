"""Every bad input of the catalogue ends in its message, a non-zero exit and no traceback.

The cases run through ``python -m src.main``, two at a time, once per test session; each
test then checks one case's outcome.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import run_main

from catalogue import CASES, Case

PARALLEL_CASES = 2


def _fill(text: str, folder: Path) -> str:
    return text.replace("{tmp}", str(folder))


def run_case(case: Case, folder: Path) -> tuple[int, str]:
    """Write the case's bad files under ``folder``, run the case and return its exit status and output."""
    inputs = folder / "inputs"
    inputs.mkdir(parents=True)
    if case.setup is not None:
        case.setup(inputs)
    overrides = [_fill(arg, inputs) for arg in case.overrides]
    env = {key: _fill(value, inputs) for key, value in case.env.items()}
    result = run_main(overrides, folder, timeout=300, extra_env=env)
    return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory) -> dict[str, tuple[int, str]]:
    root = tmp_path_factory.mktemp("catalogue")
    with ThreadPoolExecutor(PARALLEL_CASES) as pool:
        results = pool.map(lambda case: run_case(case, root / case.name), CASES)
        return {case.name: result for case, result in zip(CASES, results)}


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_gets_its_message(case, outcomes, reliability_record):
    returncode, output = outcomes[case.name]

    clear = returncode == case.exit_code and "Traceback" not in output and bool(re.search(case.message, output))
    early = "stage train: started" not in output
    reliability_record(kind="bad_input", name=case.name, clear=clear, before_heavy_work=early)
    assert returncode == case.exit_code, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert re.search(case.message, output), output[-3000:]
    assert early == case.before_heavy_work, output[-3000:]
    if case.absent is not None:
        assert case.absent not in output


def test_full_error_shows_the_traceback(run_cli):
    result = run_cli(["dropout=1.5"], extra_env={"HYDRA_FULL_ERROR": "1"})

    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "dropout must be a number in [0, 1), that is from 0 up to but not including 1; got 1.5" in result.stderr


def test_catalogue_covers_each_kind_once_per_name():
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))
    assert {case.kind for case in CASES} == {"config", "data", "environment"}
