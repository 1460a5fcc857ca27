#!/usr/bin/env bash
# Creates .venv and installs the project into it (with the extras given, e.g. "test").
# Re-installs only when pyproject.toml has changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
python="${PYTHON:-python3}"
if [ "$extras" = "test" ]; then
    bash scripts/system-packages.sh browser
else
    bash scripts/system-packages.sh
fi
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
spec="."
[ -n "$extras" ] && spec=".[$extras]"
stamp=".venv/.loanflow-installed-${extras:-base}"
wanted="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e "$spec"
    echo "$wanted" > "$stamp"
fi
