#!/usr/bin/env bash
# Create .venv and install the pinned requirements (default requirements.txt; scripts/test.sh passes
# requirements-dev.txt), printing each step. Installs with uv (fast resolver/installer, itself
# installed into .venv by pip) and falls back to pip; skipped when the requirements have not changed.
set -euo pipefail
cd "$(dirname "$0")/.."
req=${1:-requirements.txt}
UV_VERSION=0.13.9
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
if [ ! -x .venv/bin/python ]; then
  step "[1/4] 创建 Python 虚拟环境 .venv（约 5 秒）"
  python3 -m venv .venv
else
  step "[1/4] Python 虚拟环境 .venv 已存在"
fi
stamp=.venv/.requirements.$(basename "$req").sha
want=$(cat requirements.txt "$req" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  step "[2/4] 依赖已安装（$req 未变化）"
  exit 0
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
start=$SECONDS
if [ ! -x .venv/bin/uv ]; then
  step "[2/4] 安装依赖：先安装安装工具 uv ${UV_VERSION}"
  .venv/bin/python -m pip install --progress-bar on "uv==${UV_VERSION}" || true
fi
if [ -x .venv/bin/uv ]; then
  step "[2/4] 安装依赖（$req，uv 并行下载安装，下面显示进度）"
  # --compile-bytecode: uv leaves the .pyc files out by default (pip writes them); without them every
  # process compiles the libraries it imports again where PYTHONDONTWRITEBYTECODE is set, and the
  # first start pays for it anyway.
  VIRTUAL_ENV="$PWD/.venv" .venv/bin/uv pip install --compile-bytecode --python .venv/bin/python -r "$req"
else
  step "[2/4] 安装依赖（$req，pip，下面显示进度）"
  .venv/bin/python -m pip install --progress-bar on -r "$req"
fi
echo "$want" > "$stamp"
echo "依赖安装完成，用时 $((SECONDS - start)) 秒"
