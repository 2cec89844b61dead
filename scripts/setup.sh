#!/usr/bin/env bash
# Installs the system packages (idempotent) and builds lingshu in Release into build/.
# Set LINGSHU_WERROR=ON to turn warnings into errors (CI does).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
# LINGSHU_WERROR is passed only when set: the demo after the tests (or the other way round) then
# keeps the existing build instead of recompiling everything for a changed flag.
werror=()
[ -n "${LINGSHU_WERROR:-}" ] && werror=(-DLINGSHU_WERROR="$LINGSHU_WERROR")
if [ ! -f build/CMakeCache.txt ]; then
  cmake -S . -B build "${generator[@]}" -DCMAKE_BUILD_TYPE=Release "${werror[@]}" >/dev/null
else
  cmake -S . -B build "${werror[@]}" >/dev/null
fi
cmake --build build --parallel "$(nproc)" "$@"
