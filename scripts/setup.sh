#!/usr/bin/env bash
# Create .venv and install the pinned requirements; skipped when they have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d .venv ] || python3 -m venv .venv
. .venv/bin/activate
stamp=.venv/.requirements.sha
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  PIP_DISABLE_PIP_VERSION_CHECK=1 pip install -q -r requirements-dev.txt
  echo "$want" > "$stamp"
fi
