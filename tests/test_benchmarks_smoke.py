"""The benchmark scripts run end to end with ``--smoke`` (as subprocesses, JSON into tmp_path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


_REPO = Path(__file__).resolve().parents[1]
_BENCH = _REPO / "benchmarks"


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(_REPO), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def test_search_quality_digits_smoke(tmp_path: Path) -> None:
    out = tmp_path / "sq.json"
    run = _run(
        [str(_BENCH / "search_quality.py"), "--smoke", "--task", "digits", "--json", str(out)],
        tmp_path,
    )
    assert "Kendall tau" in run.stdout
    payload = json.loads(out.read_text())
    assert payload["smoke"] is True
    assert {r["sampler"] for r in payload["runs"]} == {"enas", "enas-official", "random-ws", "tpe"}
    for r in payload["runs"]:
        assert 0.0 <= r["retrain"]["test"] <= 1.0
        assert len(r["values"]) == payload["config"]["n_trials"]
    tau = payload["kendall_tau"]
    assert tau["n"] == len(tau["pairs"]) >= 4


def test_search_quality_missing_ptb_exits_cleanly(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, str(_BENCH / "search_quality.py"), "--smoke", "--task", "ptb"]
        + ["--data", str(tmp_path / "nope"), "--json", str(tmp_path / "x.json")],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(_REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0
    assert "PTB not found" in run.stderr


def test_sampler_overhead_smoke(tmp_path: Path) -> None:
    out = tmp_path / "so.json"
    _run(
        [
            str(_BENCH / "sampler_overhead.py"),
            "--smoke",
            "--storages",
            "memory",
            "--json",
            str(out),
        ],
        tmp_path,
    )
    rows = json.loads(out.read_text())["results"]
    assert {r["sampler"] for r in rows} == {"enas", "random", "tpe"}


@pytest.mark.slow
def test_supernet_step_smoke(tmp_path: Path) -> None:
    """README: every benchmark's smoke size runs in CI (the slow step runs this one)."""
    out = tmp_path / "ss.json"
    run = _run([str(_BENCH / "supernet_step.py"), "--smoke", "--json", str(out)], tmp_path)
    assert f"wrote {out}" in run.stdout
    payload = json.loads(out.read_text())
    assert payload["benchmark"] == "supernet_step"
    assert payload["worker"]  # the measuring subprocess reported


def test_sampler_quality_smoke(tmp_path: Path) -> None:
    out = tmp_path / "sq.json"
    run = _run([str(_BENCH / "sampler_quality.py"), "--smoke", "--json", str(out)], tmp_path)
    assert "ENAS default vs random" in run.stdout
    payload = json.loads(out.read_text())
    assert payload["smoke"] is True
    assert {r["sampler"] for r in payload["rows"]} == {"enas", "random", "tpe", "gp"}
    assert all(r["regret"] >= 0 for r in payload["rows"])


def test_surrogate_search_smoke_on_the_committed_ground_truth(tmp_path: Path) -> None:
    run = _run([str(_BENCH / "surrogate_search.py"), "--smoke", "--task", "rnn"], tmp_path)
    assert "leave-one-out Kendall tau" in run.stdout
    for sampler in ("enas", "random", "tpe"):
        assert f"| {sampler}" in run.stdout


def test_batched_scoring_smoke(tmp_path: Path) -> None:
    out = tmp_path / "bs.json"
    _run([str(_BENCH / "batched_scoring.py"), "--smoke", "--json", str(out)], tmp_path)
    payload = json.loads(out.read_text())
    assert payload  # the rows: batched vs one-at-a-time scoring, checked equal inside


@pytest.mark.slow
def test_end_to_end_smoke_with_the_one_shot_methods(tmp_path: Path) -> None:
    run = _run(
        [str(_BENCH / "end_to_end.py"), "--smoke", "--task", "micro"]
        + ["--methods", "random", "darts", "dsonas"],
        tmp_path,
    )
    for method in ("random", "darts", "dsonas"):
        assert f"{method} seed 0: retrained" in run.stdout
