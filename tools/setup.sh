#!/usr/bin/env bash
# One idempotent set-up for a fresh Debian 12 machine (run as root, or with sudo available):
#  1. installs every Debian package the build, the tests and the installer need;
#  2. enables deb-src and fetches the cJSON and Check *source* packages (with Debian's patches),
#     then cross-builds them for mingw-w64 into build/deps/mingw (nothing third-party is committed);
#  3. creates the project-local Wine prefix build/wineprefix.
# Re-running it skips every step that is already done.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
deps="$top/build/deps"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

# llvm: llvm-dlltool/llvm-readobj make the MSVC import library asyncipc.lib; lld: lld-link, with
# which the installer suites link a program against it the Visual Studio way.
pkgs=(cmake make gcc g++ clang libclang-rt-14-dev llvm lld pkg-config dpkg-dev
      gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64 binutils-mingw-w64-x86-64 mingw-w64-x86-64-dev
      wine64 wine check libcjson-dev nsis valgrind procps python3 xvfb xauth)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# deb-src entries are needed for `apt-get source`; add them once, next to the binary ones.
srcfile=/etc/apt/sources.list.d/asyncipc-deb-src.sources
need_update=0
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources | $SUDO tee "$srcfile" >/dev/null
  else
    grep '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' | $SUDO tee /etc/apt/sources.list.d/asyncipc-deb-src.list >/dev/null
  fi
  need_update=1
fi
if [ ${#missing[@]} -gt 0 ] || [ $need_update = 1 ] || [ ! -f "$deps/mingw/lib/libcjson.a" ] || [ ! -f "$deps/mingw/lib/libcheck.a" ]; then
  echo "setup: apt-get update" >&2
  $SUDO apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# cJSON and Check for mingw-w64, from Debian's source packages (Debian patches applied).
build_dep() { # name cmake-args...
  local name=$1; shift
  local src="$deps/src/$name" bld="$deps/build-$name"
  if [ ! -d "$src" ]; then
    mkdir -p "$deps/src/dl"
    (cd "$deps/src/dl" && apt-get source --download-only "$name" >/dev/null 2>&1)
    local dsc; dsc=$(ls "$deps/src/dl/${name}"_*.dsc | head -n1)
    dpkg-source --skip-debianization -x "$dsc" "$src" >/dev/null 2>&1
  fi
  cmake -S "$src" -B "$bld" -DCMAKE_TOOLCHAIN_FILE="$top/cmake/mingw-w64.cmake" \
        -DCMAKE_INSTALL_PREFIX="$deps/mingw" -DCMAKE_BUILD_TYPE=Release "$@" >"$bld.log" 2>&1 \
    && cmake --build "$bld" -j"$(nproc)" --target install >>"$bld.log" 2>&1 \
    || { echo "setup: building $name failed, see $bld.log" >&2; exit 1; }
}
# cJSON's own default marks its functions __declspec(dllexport) even in a static library, and
# asyncipc.dll would then export them (and its import libraries offer them to every program):
# built with its symbols hidden; a library made before that is rebuilt.
cjson_exports() {
  local d
  d=$(x86_64-w64-mingw32-objdump -s -j .drectve "$deps/mingw/lib/libcjson.a" 2>/dev/null) || return 1
  grep -q -- '-export' <<<"$d"
}
if [ ! -f "$deps/mingw/lib/libcjson.a" ] || cjson_exports; then
  echo "setup: cross-building cJSON from the Debian source package" >&2
  build_dep cjson -DBUILD_SHARED_LIBS=OFF -DBUILD_SHARED_AND_STATIC_LIBS=OFF \
    -DENABLE_CJSON_TEST=OFF -DENABLE_CUSTOM_COMPILER_FLAGS=OFF -DENABLE_CJSON_UTILS=OFF \
    -DENABLE_PUBLIC_SYMBOLS=OFF -DENABLE_HIDDEN_SYMBOLS=ON
fi
if [ ! -f "$deps/mingw/lib/libcheck.a" ]; then
  echo "setup: cross-building Check from the Debian source package" >&2
  build_dep check -DCHECK_ENABLE_TESTS=OFF -DBUILD_TESTING=OFF -DCHECK_ENABLE_SUBUNIT=OFF
fi

# Project-local Wine prefix (no Mono/Gecko prompts, no display needed).
export WINEPREFIX="$top/build/wineprefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  echo "setup: creating Wine prefix $WINEPREFIX" >&2
  mkdir -p "$WINEPREFIX"
  wineboot --init >/dev/null 2>&1 || true
  wineserver -w || true
fi
echo "setup: ready" >&2
