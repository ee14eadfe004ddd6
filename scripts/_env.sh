# shellcheck shell=bash
# Sourced helper: puts the repository's virtualenv on PATH, creating and filling it if needed.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/_env.sh"
#
# Afterwards the shell is at the repository root with .venv activated. Safe under
# `set -euo pipefail` and from any working directory. Re-runs are fast: the install is
# skipped while .venv/.installed-<sha256 of pyproject.toml + constraints.txt> exists.
# Environment: PYTHON (interpreter used to create .venv, default python3).

if [[ "${BASH_SOURCE[0]}" == "${0}" ]]; then
    echo "_env.sh must be sourced, not executed" >&2
    exit 2
fi

_oe_repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)" || return 1
cd "${_oe_repo_root}" || return 1

_oe_python="${PYTHON:-python3}"

# Create .venv when it is missing or its interpreter no longer runs (e.g. the base
# Python it was made from has moved). `python -m venv` on an existing dir is harmless.
if ! { [[ -x .venv/bin/python ]] && .venv/bin/python -c "" >/dev/null 2>&1; }; then
    if ! "${_oe_python}" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
        echo "_env.sh: ${_oe_python} is missing or older than Python 3.10" >&2
        return 1
    fi
    echo "_env.sh: creating .venv with $("${_oe_python}" -V 2>&1)" >&2
    "${_oe_python}" -m venv --clear .venv || return 1
fi

# shellcheck disable=SC1091
source .venv/bin/activate || return 1

_oe_stamp=".venv/.installed-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-64)"
if [[ ! -e "${_oe_stamp}" ]]; then
    # Editable installs of a pyproject-only project need pip >= 21.3; upgrade only then.
    if ! python -c 'import sys, pip; sys.exit(tuple(map(int, pip.__version__.split(".")[:2])) < (21, 3))' \
        >/dev/null 2>&1; then
        echo "_env.sh: upgrading pip" >&2
        python -m pip install -q --upgrade pip || return 1
    fi
    echo "_env.sh: installing optuna-enas[dev] into .venv (torch pinned by constraints.txt)" >&2
    python -m pip install -q -c constraints.txt -e ".[dev]" || return 1
    rm -f .venv/.installed-*
    : >"${_oe_stamp}"
fi

unset _oe_repo_root _oe_python _oe_stamp
