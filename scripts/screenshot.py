"""Screenshot an optuna-dashboard trial page with headless Chromium (for docs/img/).

    python scripts/screenshot.py                      # a fresh tiny search, best trial
    python scripts/screenshot.py --storage sqlite:///optuna-enas.db --study-id 1 --trial 7

Without ``--storage`` it runs ``optuna-enas search`` (12 tiny trials) in a temporary directory.
It serves the dashboard on 127.0.0.1 (a free port, in this process, with the artifact store
the CLI uses), opens ``/dashboard/studies/ID/trials?numbers=N`` in headless Chromium and writes
two PNGs: the page at 1400x1000 (the trial note with the architecture drawing) and a 1400x1450
one that also shows the trial's user attributes and artifacts, plus the study page (the
controller and best-so-far figures). Needs Chromium
(Debian: ``apt-get install -y chromium``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler
from wsgiref.simple_server import make_server


_REPO = Path(__file__).resolve().parents[1]
_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--hide-scrollbars",
    "--virtual-time-budget=10000",  # let the React app fetch the study and render
]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def _chromium(explicit: str | None) -> str:
    for name in [explicit] if explicit else ["chromium", "chromium-browser", "google-chrome"]:
        path = shutil.which(name) if name else None
        if path:
            return path
    sys.exit("screenshot.py: Chromium not found (apt-get install -y chromium, or --chromium)")


def _demo_search(workdir: Path) -> str:
    from optuna_enas.cli import main as cli

    url = f"sqlite:///{workdir}/demo.db"
    tiny = ["--n-nodes", "5", "--hidden-size", "16", "--batch-size", "16", "--bptt", "16"]
    code = cli(["search", "--storage", url, "--trials", "12", "--figures-every", "4", *tiny])
    if code != 0:
        sys.exit(f"screenshot.py: the demo search failed with exit code {code}")
    return url


def _shoot(chromium: str, url: str, out: Path, size: str, profile: Path) -> None:
    cmd = [
        chromium,
        *_FLAGS,
        f"--user-data-dir={profile}",
        f"--screenshot={out}",
        f"--window-size={size}",
        url,
    ]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if run.returncode != 0 or not out.is_file():
        sys.exit(f"screenshot.py: chromium failed ({run.returncode}): {run.stderr[-500:]}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Screenshot a dashboard trial page.")
    parser.add_argument("--storage", default=None, help="default: run a tiny demo search")
    parser.add_argument("--artifact-dir", default=None, help="default: as optuna-enas search")
    parser.add_argument("--study-id", type=int, default=None, help="default: the first study")
    parser.add_argument("--trial", type=int, default=None, help="trial number (default: best)")
    parser.add_argument("--output", default=str(_REPO / "docs/img/dashboard-trial.png"))
    parser.add_argument("--tall-output", default=str(_REPO / "docs/img/dashboard-trial-attrs.png"))
    parser.add_argument("--study-output", default=str(_REPO / "docs/img/dashboard-study.png"))
    parser.add_argument("--chromium", default=None, help="Chromium executable")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(_REPO))
    import optuna
    from optuna.artifacts import FileSystemArtifactStore
    from optuna_dashboard import wsgi

    from optuna_enas.cli import default_artifact_dir
    from optuna_enas.cli import open_storage

    chromium = _chromium(args.chromium)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = args.storage or _demo_search(work)
        storage = open_storage(url, must_exist=True)
        artifacts = Path(args.artifact_dir or default_artifact_dir(url))
        studies = sorted(storage.get_all_studies(), key=lambda s: s._study_id)
        if not studies:
            sys.exit(f"screenshot.py: {url} holds no study")
        summary = studies[0] if args.study_id is None else None
        for s in studies:
            if s._study_id == args.study_id:
                summary = s
        if summary is None:
            sys.exit(f"screenshot.py: --study-id {args.study_id} not found")
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        number = args.trial if args.trial is not None else study.best_trial.number

        app = wsgi(storage, artifact_store=FileSystemArtifactStore(str(artifacts)))
        server = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            base = f"http://127.0.0.1:{server.server_port}"
            urllib.request.urlopen(f"{base}/api/meta", timeout=10).close()
            page = f"{base}/dashboard/studies/{summary._study_id}/trials?numbers={number}"
            start = time.perf_counter()
            study_page = f"{base}/dashboard/studies/{summary._study_id}"
            shots = (
                (page, args.output, "1400,1000"),
                (page, args.tall_output, "1400,1450"),
                (study_page, args.study_output, "1400,1900"),
            )
            for target, out, size in shots:
                path = Path(out)
                path.parent.mkdir(parents=True, exist_ok=True)
                _shoot(chromium, target, path, size, work / "chromium-profile")
                print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
            print(f"page: {page} (trial {number}, {time.perf_counter() - start:.1f} s)")
        finally:
            server.shutdown()
            server.server_close()


if __name__ == "__main__":
    main()
