#!/usr/bin/env bash
# tools/setup-nng.sh - for the benchmarks only (called by tools/bench.sh, not by CI's tests):
# fetches Debian's nng source package (deb-src is enabled by tools/setup.sh) and cross-builds it
# for mingw-w64 with its own CMake - static, no TLS, no tests or tools - into build/deps/mingw.
# Nothing third-party is committed. Idempotent: does nothing once libnng.a is installed.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
deps="$top/build/deps"
[ -f "$deps/mingw/lib/libnng.a" ] && exit 0
src="$deps/src/nng" bld="$deps/build-nng"
if [ ! -d "$src" ]; then
  mkdir -p "$deps/src/dl"
  (cd "$deps/src/dl" && apt-get source --download-only nng >/dev/null 2>&1) ||
    { echo "setup-nng: apt-get source nng failed (is deb-src enabled? run tools/setup.sh)" >&2; exit 1; }
  dsc=$(ls "$deps/src/dl"/nng_*.dsc | head -n1)
  dpkg-source --skip-debianization -x "$dsc" "$src" >/dev/null 2>&1
fi
echo "setup-nng: cross-building nng from the Debian source package" >&2
cmake -S "$src" -B "$bld" -DCMAKE_TOOLCHAIN_FILE="$top/cmake/mingw-w64.cmake" \
      -DCMAKE_INSTALL_PREFIX="$deps/mingw" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
      -DNNG_TESTS=OFF -DNNG_TOOLS=OFF -DNNG_ENABLE_NNGCAT=OFF -DNNG_ENABLE_TLS=OFF \
      -DNNG_ENABLE_HTTP=OFF -DNNG_TRANSPORT_WS=OFF -DNNG_TRANSPORT_WSS=OFF \
      -DNNG_TRANSPORT_ZEROTIER=OFF >"$bld.log" 2>&1 \
  && cmake --build "$bld" -j"$(nproc)" --target install >>"$bld.log" 2>&1 \
  || { echo "setup-nng: building nng failed, see $bld.log" >&2; exit 1; }
