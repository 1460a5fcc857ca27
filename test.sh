#!/usr/bin/env bash
# Sets up and runs the test suite (lint, then pytest). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/bootstrap.sh test
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
