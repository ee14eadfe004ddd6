"""Shared pytest fixtures: storage URLs and the benchmark corpora."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest


_REPO_ROOT = Path(__file__).resolve().parents[1]
POSTGRES_URL_ENV = "OPTUNA_ENAS_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "OPTUNA_ENAS_REQUIRE_POSTGRES"
DATA_DIR_ENV = "OPTUNA_ENAS_DATA_DIR"


def _redact(url: str) -> str:
    """Hide the password in a database URL before it goes into a skip message."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """SQLAlchemy URL of a reachable PostgreSQL database, or skip.

    The URL comes from ``OPTUNA_ENAS_TEST_POSTGRES_URL``; ``.ci/run`` starts a throwaway
    server and sets it. The database is shared by all tests, so use unique study names.
    With ``OPTUNA_ENAS_REQUIRE_POSTGRES=1`` (``.ci/run`` sets it once a server is up) a
    missing or unreachable server fails the test instead of skipping it.
    """
    required = os.environ.get(REQUIRE_POSTGRES_ENV, "").strip() == "1"
    give_up = pytest.fail if required else pytest.skip
    url = os.environ.get(POSTGRES_URL_ENV, "").strip()
    if not url:
        give_up(f"{POSTGRES_URL_ENV} is not set (.ci/run starts a PostgreSQL server)")
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(url, connect_args={"connect_timeout": 5})
        try:
            with engine.connect() as conn:
                conn.execute(sqlalchemy.text("SELECT 1"))
        finally:
            engine.dispose()
    except Exception as e:  # Any failure means there is no usable server.
        give_up(f"PostgreSQL at {_redact(url)} is unreachable: {type(e).__name__}: {e}")
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """SQLAlchemy URL of a fresh SQLite file in the test's temporary directory."""
    return f"sqlite:///{tmp_path}/study.db"


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The benchmark corpora directory (``shared/data`` beside the repository), or skip.

    ``OPTUNA_ENAS_DATA_DIR`` overrides the location.
    """
    override = os.environ.get(DATA_DIR_ENV, "").strip()
    if override:
        candidates = [Path(override).expanduser()]
    else:
        candidates = [
            _REPO_ROOT.parent / "shared" / "data",
            _REPO_ROOT / "shared" / "data",
        ]
    for path in candidates:
        if path.is_dir():
            return path.resolve()
    tried = ", ".join(str(p) for p in candidates)
    pytest.skip(f"benchmark data not found (tried {tried}; set {DATA_DIR_ENV})")


@pytest.fixture(scope="session")
def ptb_dir(shared_data_dir: Path) -> Path:
    """The Penn Treebank corpus (train/valid/test.txt), or skip."""
    path = shared_data_dir / "ptb"
    if not (path / "train.txt").is_file():
        pytest.skip(f"Penn Treebank corpus not found in {path}")
    return path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in gpu_items:
        item.add_marker(skip_gpu)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op torch thread for a module: the models in the tests are tiny, threads only
    add overhead, and on a busy machine oversubscription makes them many times slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
