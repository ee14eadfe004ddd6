"""Errors of the ``optuna-enas`` command: bad input is one line on stderr, exit status 2."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    pass


PROG = "optuna-enas"


class UsageError(Exception):
    """Bad command-line input: reported as one line on stderr with exit status 2."""


def _redact(url: str) -> str:
    """``url`` with the password hidden, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")
