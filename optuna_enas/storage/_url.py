"""Storage URLs: a plain ``postgresql://`` URL works with the ``postgres`` extra's driver."""

from __future__ import annotations

import importlib.util


def storage_url(url: str) -> str:
    """``url`` with the PostgreSQL driver that is installed.

    SQLAlchemy 2 maps a plain ``postgresql://`` URL to psycopg 3; the ``postgres`` extra of
    optuna-enas installs psycopg2. When psycopg 3 is missing and psycopg2 is installed, the URL
    gets ``+psycopg2``. Other URLs, and URLs that name a driver
    (``postgresql+psycopg://``, ``postgresql+psycopg2://``), are returned unchanged.
    """
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec(
                "psycopg2"
            ):
                return "postgresql+psycopg2://" + url[len(scheme) :]
            return url
    return url


__all__ = ["storage_url"]
