"""``main``: parse the command line, run the command, turn errors into an exit status."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from optuna_enas.cli._errors import PROG
from optuna_enas.cli._errors import UsageError
from optuna_enas.cli._errors import _one_line
from optuna_enas.cli._parser import build_parser


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
