"""Run the bad-input catalogue and the fault tests, and print what ended consistent.

    python benchmarks/reliability_report.py            # about 8 minutes on 2 cores
    python benchmarks/reliability_report.py --table    # only the catalogue, as a Markdown table

It runs ``pytest tests/test_catalogue.py tests/test_faults.py`` (slow tests included) with
``LAYER_MAPS_RELIABILITY_LOG`` set, so that each test appends what it saw to a JSON-lines
file, then prints:

- bad inputs tried, how many got a clear message (expected exit status, the expected
  text, no traceback), and how many before any heavy work (training);
- faults injected and how many ended consistent (no run left RUNNING, only complete cache
  entries, the next identical run finished from the cache);
- runs and metrics lost: runs that did not end FINISHED after the resume, and expected
  metrics missing from the final runs. The goal is 0 for both;
- whether the same seed and config gave identical metrics twice.

With ``--table`` it runs only the catalogue's cases and prints them as the Markdown table
of the README's troubleshooting section: the input, the command, the exit status and the
message.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TESTS = ["tests/test_catalogue.py", "tests/test_faults.py"]


def run_tests(record: Path) -> int:
    env = {**os.environ, "LAYER_MAPS_RELIABILITY_LOG": str(record)}
    command = [sys.executable, "-m", "pytest", *TESTS, "-m", "slow or not slow", "-q", "-p", "no:cacheprovider"]
    print("$ " + " ".join(command[2:]), flush=True)
    return subprocess.run(command, cwd=PROJECT_ROOT, env=env, check=False).returncode


def report(records: list[dict], pytest_status: int) -> None:
    bad_inputs = [r for r in records if r["kind"] == "bad_input"]
    faults = [r for r in records if r["kind"] == "fault"]
    determinism = [r for r in records if r["kind"] == "determinism"]

    clear = sum(r["clear"] for r in bad_inputs)
    early = sum(r["clear"] and r["before_heavy_work"] for r in bad_inputs)
    consistent = sum(r["consistent"] for r in faults)
    runs_lost = sum(r["runs_lost"] for r in faults)
    metrics_lost = sum(r["metrics_lost"] for r in faults)

    print("\nreliability report")
    print(f"  bad inputs tried                     {len(bad_inputs)}")
    print(f"    with a clear message               {clear}")
    print(f"    clear and before heavy work        {early}")
    unclear = [r["name"] for r in bad_inputs if not r["clear"]]
    late = [r["name"] for r in bad_inputs if r["clear"] and not r["before_heavy_work"]]
    if unclear:
        print(f"    unclear: {', '.join(unclear)}")
    if late:
        print(f"    during the run by nature: {', '.join(late)}")
    print(f"  faults injected                      {len(faults)}")
    print(f"    ended consistent                   {consistent}")
    for r in faults:
        if not r["consistent"]:
            print(f"    not consistent: {r['name']}")
    print(f"  runs lost                            {runs_lost}   goal 0")
    print(f"  metrics lost                         {metrics_lost}   goal 0")
    for r in determinism:
        print(f"  {r['name']}: {'identical metrics' if r['identical'] else 'metrics differ'}")
    print(f"  pytest exit status                   {pytest_status}")


def first_message(output: str) -> str:
    """Return the first error line of a job's output, without the log prefix."""
    lines = output.splitlines()
    for number, line in enumerate(lines):
        text = line.split("] - ", 1)[-1] if "] - " in line else line.split("[HYDRA] ", 1)[-1]
        if "Could not find" in line:
            return line.strip() + " (Hydra lists the available options)"
        if text.startswith(("Invalid config:", "Invalid sweep:")):
            rules = [rule[4:] for rule in lines[number + 1:] if rule.startswith("  - ")]
            return rules[0] if rules else text
        if "[ERROR]" in line or ("[HYDRA]" in line and "tracking.uri" in line):
            return text
    return "(no message)"


def catalogue_table() -> int:
    sys.path.insert(0, str(PROJECT_ROOT / "tests"))
    from catalogue import CASES
    from test_catalogue import run_case

    print("| kind | input | command | exit | message |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(prefix="catalogue-") as folder:
        for case in CASES:
            status, output = run_case(case, Path(folder) / case.name)
            # Scratch paths mean nothing to a reader, so they are shown as ".../".
            message = re.sub(re.escape(folder) + r"/[^/]+/(inputs/)?", ".../", first_message(output))
            env = [f"{key}={value}" for key, value in case.env.items()]
            command = " ".join([*env, *case.overrides]).replace("{tmp}/", ".../")
            print(f"| {case.kind} | {case.mistake} | `{command}` | {status} | {message.replace('|', '/')} |", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", action="store_true", help="print the catalogue as a Markdown table, nothing else")
    if parser.parse_args().table:
        return catalogue_table()
    with tempfile.TemporaryDirectory(prefix="reliability-") as folder:
        record = Path(folder) / "records.jsonl"
        status = run_tests(record)
        lines = record.read_text().splitlines() if record.is_file() else []
    report([json.loads(line) for line in lines], status)
    return status


if __name__ == "__main__":
    sys.exit(main())
