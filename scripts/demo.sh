#!/usr/bin/env bash
# Run a small architecture search on CPU. Extra arguments go to the search command.
#   bash scripts/demo.sh [ARGS...]
set -euo pipefail
# shellcheck source=scripts/_env.sh
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"

if [[ -f optuna_enas/cli.py ]]; then
    exec python -m optuna_enas.cli search "$@"
elif [[ -f examples/quickstart.py ]]; then
    exec python examples/quickstart.py "$@"
else
    echo "demo.sh: neither optuna_enas/cli.py nor examples/quickstart.py exists yet" >&2
    exit 1
fi
