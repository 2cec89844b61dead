#!/usr/bin/env bash
# Installs every system package lingshu needs, idempotently, from Debian only.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libtorch-dev libgloo-dev libhdf5-dev zlib1g-dev
  libcli11-dev nlohmann-json3-dev libfmt-dev
  libgtest-dev libgmock-dev
  libopenblas0-openmp
  python3-anndata python3-scipy
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "lingshu setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# LibTorch uses whatever libblas.so.3 is selected; the reference BLAS is ~50x slower than OpenBLAS.
# The OpenMP build of OpenBLAS cooperates with LibTorch's OpenMP threads (the pthread one fights them).
blas=$(ls /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3 2>/dev/null || true)
if [ -n "$blas" ]; then
  current=$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | awk '/^Value:/{print $2}')
  if [ "$current" != "$blas" ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO update-alternatives --set libblas.so.3-x86_64-linux-gnu "$blas" >/dev/null
    lapack=/usr/lib/x86_64-linux-gnu/openblas-openmp/liblapack.so.3
    [ -e "$lapack" ] && $SUDO update-alternatives --set liblapack.so.3-x86_64-linux-gnu "$lapack" >/dev/null || true
  fi
fi
