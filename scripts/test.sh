#!/usr/bin/env bash
# Sets up, builds (warnings as errors) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
LINGSHU_WERROR=ON bash scripts/setup.sh
cd build
ctest --output-on-failure --timeout 1500 -j 2 "$@"
