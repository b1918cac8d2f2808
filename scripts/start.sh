#!/usr/bin/env bash
# Start the dashboard. With nothing configured it uses data/dashboard.db and loads the demo city.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
exec streamlit run dashboard.py "$@"
