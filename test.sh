#!/usr/bin/env bash
# Sets up and runs the test suite (lint, types, then pytest). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/bootstrap.sh test
.venv/bin/ruff check .
.venv/bin/mypy domain workflows activities adapters store api worker.py manage.py settings.py supervisor.py
exec .venv/bin/python -m pytest "$@"
