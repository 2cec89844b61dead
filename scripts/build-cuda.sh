#!/usr/bin/env bash
# Builds lingshu against a CUDA LibTorch on a machine without network access: a GPU machine with a
# CUDA PyTorch (its LibTorch), CMake, ninja and a C++ compiler, but no HDF5, CLI11, nlohmann-json,
# fmt or GoogleTest, and no package access.
#
#   scripts/build-cuda.sh fetch          on a Debian 12 machine with network access: puts what the
#                                        build needs into third_party/offline (about 20 MB, ignored
#                                        by git): the headers of CLI11, nlohmann-json and fmt (used
#                                        header-only), zlib and GoogleTest's source from Debian
#                                        packages (apt-get download + dpkg -x), and Debian's HDF5
#                                        source (apt-get source, from a private deb-src list)
#   scripts/build-cuda.sh build [DIR]    on the GPU machine: builds HDF5's C library (static, with
#                                        zlib) from that source, then lingshu in DIR (default
#                                        build-cuda) against PyTorch's LibTorch, with its tests and
#                                        bench programs
#
# env TORCH_PREFIX: LibTorch's CMake prefix (default: python3's torch.utils.cmake_prefix_path);
#     OFFLINE: the fetched folder (default third_party/offline); JOBS: parallel jobs (default nproc).
# Without a GPU the same build runs against Debian's CPU LibTorch (TORCH_PREFIX=/usr), which is how
# CI-less machines check this script: tests/cli/test_build_cuda_script.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
offline=$(realpath -m "${OFFLINE:-$here/third_party/offline}")
jobs=${JOBS:-$(nproc)}

fetch() {
  mkdir -p "$offline/debs" "$offline/root" "$offline/apt/lists/partial" "$offline/apt/sources"
  # Header-only or source packages: nothing here is linked as a Debian binary, so the GPU machine's
  # compiler and C++ ABI (PyTorch's) decide everything.
  (cd "$offline/debs" && apt-get download libcli11-dev nlohmann-json3-dev libfmt-dev zlib1g-dev googletest)
  for deb in "$offline"/debs/*.deb; do dpkg -x "$deb" "$offline/root"; done
  cat > "$offline/apt/sources/src.sources" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  local apt_opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$offline/apt/sources"
    -o "Dir::State::Lists=$offline/apt/lists")
  apt-get "${apt_opts[@]}" update -qq
  (cd "$offline" && apt-get "${apt_opts[@]}" source --download-only -qq hdf5)
  mv "$offline"/hdf5_*.orig.tar.gz "$offline/hdf5-src.tar.gz"
  rm -rf "$offline/apt" "$offline"/hdf5_* "$offline/debs"
  echo "build-cuda: fetched into $offline ($(du -sh "$offline" | cut -f1)); copy it with the work tree"
}

build_hdf5() {
  local build=$1
  [ -e "$build/hdf5/lib/libhdf5.a" ] && return 0
  rm -rf "$build/hdf5-src"
  mkdir -p "$build/hdf5-src"
  tar -xzf "$offline/hdf5-src.tar.gz" -C "$build/hdf5-src" --strip-components=1
  # HDF5 1.10's CMake reads a probe's answer from a file in its build folder, but CMake 3.24 and
  # later do not run the probe there: write that file beforehand, from the same probe, and run
  # from the build folder so that nothing lands in the caller's.
  mkdir -p "$build/hdf5-build"
  cat >"$build/hdf5-build/probe.c" <<'C'
#include <float.h>
#include <stdio.h>
#if defined(__SIZEOF_FLOAT128__) && __has_include(<quadmath.h>)
#include <quadmath.h>
#endif
#ifndef FLT128_DIG
#define FLT128_DIG 0
#endif
int main(void) {
  FILE *f = fopen("pac_Cconftest.out", "w");
  fprintf(f, "%d;%d;", DECIMAL_DIG, FLT128_DIG);
  return fclose(f);
}
C
  (cd "$build/hdf5-build" && cc probe.c -o probe && ./probe)
  (cd "$build/hdf5-build" && cmake -S "$build/hdf5-src" -B "$build/hdf5-build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$build/hdf5" -DBUILD_SHARED_LIBS=OFF -DBUILD_TESTING=OFF \
    -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DHDF5_BUILD_TOOLS=OFF -DHDF5_BUILD_EXAMPLES=OFF \
    -DHDF5_BUILD_HL_LIB=OFF -DHDF5_BUILD_FORTRAN=OFF -DHDF5_BUILD_CPP_LIB=OFF -DHDF5_BUILD_JAVA=OFF \
    -DHDF5_ENABLE_Z_LIB_SUPPORT=ON -DZLIB_INCLUDE_DIR="$offline/root/usr/include" \
    -DZLIB_LIBRARY="$offline/root/usr/lib/x86_64-linux-gnu/libz.a" -DHDF5_ENABLE_SZIP_SUPPORT=OFF \
    -DHDF5_INSTALL_CMAKE_DIR=lib/cmake/hdf5) >"$build/hdf5-configure.log" 2>&1 ||
    { tail -30 "$build/hdf5-configure.log"; exit 1; }
  cmake --build "$build/hdf5-build" --parallel "$jobs" >"$build/hdf5-build.log" 2>&1 ||
    { tail -30 "$build/hdf5-build.log"; exit 1; }
  cmake --install "$build/hdf5-build" >/dev/null
}

build() {
  local build
  build=$(realpath -m "${1:-$here/build-cuda}")
  [ -e "$offline/hdf5-src.tar.gz" ] || { echo "build-cuda: $offline has no HDF5 source; run 'scripts/build-cuda.sh fetch' on a machine with network access first" >&2; exit 1; }
  local torch_prefix=${TORCH_PREFIX:-}
  if [ -z "$torch_prefix" ]; then
    torch_prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)') ||
      { echo "build-cuda: python3 has no torch; set TORCH_PREFIX to LibTorch's CMake prefix" >&2; exit 1; }
  fi
  mkdir -p "$build"
  echo "build-cuda: HDF5 (static) ..."
  build_hdf5 "$build"
  echo "build-cuda: lingshu against LibTorch in $torch_prefix ..."
  cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$offline/root/usr;$torch_prefix" -DCMAKE_FIND_PACKAGE_PREFER_CONFIG=ON \
    -DHDF5_ROOT="$build/hdf5" -DHDF5_USE_STATIC_LIBRARIES=ON \
    -DZLIB_INCLUDE_DIR="$offline/root/usr/include" -DZLIB_LIBRARY="$offline/root/usr/lib/x86_64-linux-gnu/libz.a" \
    -DLINGSHU_OFFLINE=ON -DLINGSHU_GTEST_SOURCE="$offline/root/usr/src/googletest" \
    >"$build/configure.log" 2>&1 || { tail -40 "$build/configure.log"; exit 1; }
  cmake --build "$build" --parallel "$jobs"
  echo "build-cuda: built $build/lingshu"
}

case "${1:-}" in
  fetch) fetch ;;
  build) shift; build "$@" ;;
  *) echo "usage: scripts/build-cuda.sh fetch | build [DIR]" >&2; exit 2 ;;
esac
