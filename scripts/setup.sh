#!/usr/bin/env bash
# Installs the system packages (idempotent) and builds lingshu in Release into build/.
# Set LINGSHU_WERROR=ON to turn warnings into errors (CI does).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
if [ ! -f build/CMakeCache.txt ]; then
  cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DLINGSHU_WERROR="${LINGSHU_WERROR:-OFF}" >/dev/null
else
  cmake -S . -B build -DLINGSHU_WERROR="${LINGSHU_WERROR:-OFF}" >/dev/null
fi
cmake --build build --parallel "$(nproc)" "$@"
