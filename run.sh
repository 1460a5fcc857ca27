#!/usr/bin/env bash
# Sets up and runs the whole service: Temporal dev server + worker + API, with embedded defaults.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/bootstrap.sh
exec .venv/bin/python manage.py run "$@"
