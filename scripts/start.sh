#!/usr/bin/env bash
# Start the dashboard, printing each step: environment, dependencies, the demo data (when nothing is
# configured and data/dashboard.db is empty), the first count of the indicators, then the server.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh requirements.txt
.venv/bin/python scripts/prepare.py
printf '\n\033[1m==> [4/4] 启动看板：浏览器打开 http://localhost:%s\033[0m\n' "${PORT:-8501}"
exec .venv/bin/python scripts/serve.py --server.port "${PORT:-8501}" "$@"
