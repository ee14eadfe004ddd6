"""``python -m optuna_enas.cli``: the ``optuna-enas`` command."""

from __future__ import annotations

import sys

from optuna_enas.cli import main


if __name__ == "__main__":
    sys.exit(main())
