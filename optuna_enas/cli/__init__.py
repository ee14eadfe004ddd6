"""The ``optuna-enas`` command: search, compare samplers, derive, retrain, export, dashboard.

Run ``optuna-enas COMMAND --help`` (or ``python -m optuna_enas COMMAND --help``) for the
options. Every command works on an Optuna storage (default ``sqlite:///optuna-enas.db`` in the
current directory); a search is resumed by running the same command again. Bad input (an
unknown space, a missing data path, an unreachable storage) prints one line on stderr and exits
with status 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from optuna_enas.cli._errors import PROG
from optuna_enas.cli._errors import UsageError
from optuna_enas.cli._errors import _one_line
from optuna_enas.cli._options import SAMPLERS
from optuna_enas.cli._options import SPACES
from optuna_enas.cli._parser import build_parser
from optuna_enas.cli._storage import CONFIG_ATTR
from optuna_enas.cli._storage import DEFAULT_STORAGE
from optuna_enas.cli._storage import WALL_ATTR
from optuna_enas.cli._storage import default_artifact_dir
from optuna_enas.cli._storage import open_storage


__all__ = [
    "CONFIG_ATTR",
    "DEFAULT_STORAGE",
    "PROG",
    "SAMPLERS",
    "SPACES",
    "WALL_ATTR",
    "UsageError",
    "build_parser",
    "default_artifact_dir",
    "main",
    "open_storage",
]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``optuna-enas`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version, or a parse error (already printed)
        return e.code if isinstance(e.code, int) else 2
    import logging

    import optuna

    if args.verbose:
        logging.basicConfig(level=logging.INFO)
    else:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    if hasattr(args, "log_every") and (args.log_every < 1 or args.figures_every < 1):
        print(f"{PROG}: error: --log-every and --figures-every must be >= 1.", file=sys.stderr)
        return 2
    if args.threads is not None:
        if args.threads < 1:
            print(
                f"{PROG}: error: --threads must be >= 1, but got {args.threads}.", file=sys.stderr
            )
            return 2
        import torch

        torch.set_num_threads(args.threads)
    from optuna_enas.cli._storage import _OPENED
    from optuna_enas.cli._storage import close_storages

    _OPENED.clear()  # storages opened outside this command are not its to close
    refused = False
    try:
        code: int = args.handler(args)
        return code
    except UsageError as e:
        refused = True  # refused before anything was written: no file is left behind
        if args.debug:
            raise
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        if args.debug:
            raise
        print(f"{PROG}: error: {_one_line(e)} (rerun with --debug for details)", file=sys.stderr)
        return 1
    finally:
        close_storages(refused=refused)
