#!/usr/bin/env bash
# Run the whole test suite (installs what it needs first). PostgreSQL tests use TEST_POSTGRES_URL,
# or a throwaway local server when Debian's postgresql package is installed; otherwise they skip.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh requirements-dev.txt
. .venv/bin/activate
if [ -z "${TEST_POSTGRES_URL:-}" ] && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  TEST_POSTGRES_URL=$(bash .ci/start-postgres.sh) && export TEST_POSTGRES_URL
fi
ruff check .
# Bytecode caches on (some environments set PYTHONDONTWRITEBYTECODE): every worker, server and child
# process the tests start would otherwise compile the project's modules and rewrite the test modules
# again (≈ 4.5 s of CPU per worker); compiled once here, before the workers start side by side.
unset PYTHONDONTWRITEBYTECODE
python -m compileall -q -x '/\.venv/' dashboard.py datasets metrics pages scripts tests benchmarks >/dev/null
# Four workers on two cores (the browser and server tests spend much of their time waiting on the
# processes they drive: 183–196 s against 211 s with three, 2026-11-30), one test file each at a time (module fixtures stay per file; the two files
# sharing the browser server go together; the longest first: tests/conftest.py); every test has its own
# ports, temporary directories and databases; the demo stores are built once per run and shared.
python -m pytest -n 4 --dist loadfile --no-loadscope-reorder "$@"
