"""CI itself: PostgreSQL that fails to start fails CI; hung tests are stopped; wheel and smoke.

Real subprocesses: ``.ci/run`` with PostgreSQL binaries that are not there, and pytest on a
PostgreSQL test against a server that is not there.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest


_REPO = Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTUNA_ENAS_")}
    return {**env, "PYTHONPATH": str(_REPO), **extra}


def test_ci_fails_when_postgresql_cannot_start(tmp_path: Path) -> None:
    env = _env(CI="true", OPTUNA_ENAS_CI_PG_BIN=str(tmp_path / "no-postgres-here"))
    proc = subprocess.Popen(
        ["bash", str(_REPO / ".ci" / "run")],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # if it went on to the tests, stop all of them below
    )
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(".ci/run went on without PostgreSQL instead of failing")
    assert proc.returncode == 1, err
    assert "PostgreSQL could not be set up: failing (CI=true)" in err
    assert "==> pytest" not in out  # stopped before the tests


@pytest.mark.slow  # a pytest subprocess; CI runs the slow tests
def test_required_postgres_that_is_unreachable_fails_instead_of_skipping(tmp_path: Path) -> None:
    node = "tests/test_multiworker.py::test_four_workers_on_postgres_lose_nothing_and_all_learn_everything"  # noqa: E501
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", node]
    url = "postgresql+psycopg2://u@127.0.0.1:1/none"
    env = _env(OPTUNA_ENAS_TEST_POSTGRES_URL=url, OPTUNA_ENAS_REQUIRE_POSTGRES="1")
    run = subprocess.run(cmd, cwd=_REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stdout[-2000:]
    assert "1 error" in run.stdout or "1 failed" in run.stdout
    assert "unreachable" in run.stdout


def test_main_pytest_step_has_a_per_test_timeout_and_ci_checks_the_wheel() -> None:
    script = (_REPO / "scripts" / "test.sh").read_text()
    main_step = next(line for line in script.splitlines() if line.startswith('step "pytest" '))
    assert re.search(r"--timeout \"\$\{TEST_TIMEOUT:-\d+\}\"", main_step)
    assert 'step "wheel"' in script and (_REPO / "scripts" / "wheel_check.sh").is_file()
    pyproject = (_REPO / "pyproject.toml").read_text()
    assert '"pytest-timeout"' in pyproject  # the plugin behind --timeout is a dev dependency


def test_version_is_the_installed_distributions() -> None:
    import importlib.metadata

    import optuna_enas

    assert optuna_enas.__version__ == importlib.metadata.version("optuna-enas")
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", optuna_enas.__version__)
