#!/usr/bin/env bash
# Installs the built dsk into a temporary prefix and builds a consumer against it twice:
# with pkg-config, and with CMake's find_package(dsk). Usage: check_install.sh BUILD_DIR SRC_DIR
set -eu
build=$1; src=$2
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log"
libdir=$(ls -d "$tmp"/prefix/lib*/pkgconfig | head -1); libdir=${libdir%/pkgconfig}
# pkg-config
# CONSUMER_CFLAGS: the sanitizer flags when libdsk was built with them (its runtime must come first)
PKG_CONFIG_PATH="$libdir/pkgconfig" cc -std=c11 ${CONSUMER_CFLAGS:-} "$src/consumer.c" -o "$tmp/c1" \
  $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs dsk)
LD_LIBRARY_PATH="$libdir" "$tmp/c1"
# CMake package
mkdir "$tmp/proj" && cp "$src/consumer.c" "$tmp/proj/" && cp "$src/CMakeLists.txt.consumer" "$tmp/proj/CMakeLists.txt"
cmake -S "$tmp/proj" -B "$tmp/proj/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" -DCMAKE_C_FLAGS="${CONSUMER_CFLAGS:-}" > "$tmp/cfg.log"
cmake --build "$tmp/proj/build" > "$tmp/build.log"
LD_LIBRARY_PATH="$libdir" "$tmp/proj/build/consumer"
echo "1 passed, 0 failed"
