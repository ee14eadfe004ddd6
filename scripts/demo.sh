#!/usr/bin/env bash
# Run a small ENAS search on CPU (embedded corpus, no download). Extra arguments go to
# `optuna-enas search`, e.g. `bash scripts/demo.sh --space micro --trials 100`.
#   bash scripts/demo.sh [ARGS...]
set -euo pipefail
# shellcheck source=scripts/_env.sh
source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"

exec python -m optuna_enas.cli search "$@"
