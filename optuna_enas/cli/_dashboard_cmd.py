"""``optuna-enas dashboard``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from optuna_enas.cli._errors import PROG
from optuna_enas.cli._errors import UsageError
from optuna_enas.cli._errors import _one_line
from optuna_enas.cli._storage import default_artifact_dir
from optuna_enas.cli._storage import open_storage


if TYPE_CHECKING:
    pass


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from optuna.artifacts import FileSystemArtifactStore
    from optuna_dashboard import run_server

    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be in 1..65535, but got {args.port}.")
    storage = open_storage(args.storage, must_exist=True)
    artifact_dir = Path(args.artifact_dir or default_artifact_dir(args.storage))
    artifact_dir.mkdir(parents=True, exist_ok=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"{PROG}: warning: --host {args.host} exposes the dashboard (no authentication) "
            "beyond this machine.",
            file=sys.stderr,
        )
    print(f"optuna-dashboard on http://{args.host}:{args.port}/ (artifacts: {artifact_dir})")
    print("press Ctrl-C to stop", flush=True)
    try:
        run_server(
            storage,
            host=args.host,
            port=args.port,
            artifact_store=FileSystemArtifactStore(str(artifact_dir)),
        )
    except KeyboardInterrupt:
        return 0
    except OSError as e:
        raise UsageError(f"--host {args.host} --port {args.port}: {_one_line(e)}") from e
    return 0
