#!/usr/bin/env bash
# Installs dsk's build and test dependencies: Debian packages only, idempotent.
# Called by `make run` and `make test`; safe to run again (installs only what is missing).
# Python test oracle (numpy, ml_dtypes) comes from PyPI when pip is present; tests that
# need it say skipped when it is absent.
set -eu

pkgs="cmake make gcc g++ pkg-config python3 clang-19 lld-19 llvm-19 libclang-rt-19-dev \
libdnnl-dev libhwloc-dev hwloc libbenchmark-dev libopenmpi-dev openmpi-bin libdlpack-dev libsimde-dev"

missing=""
for p in $pkgs; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done

if [ -n "$missing" ]; then
  echo "install-deps: installing:$missing"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends $missing
else
  echo "install-deps: all Debian packages present"
fi

# Independent test oracle (optional): numpy + ml_dtypes.
if command -v python3 >/dev/null 2>&1; then
  if ! python3 -c 'import numpy, ml_dtypes' >/dev/null 2>&1; then
    echo "install-deps: installing numpy ml_dtypes (PyPI)"
    python3 -m pip install -q numpy ml_dtypes 2>/dev/null \
      || python3 -m pip install -q --break-system-packages numpy ml_dtypes 2>/dev/null \
      || echo "install-deps: could not install numpy/ml_dtypes; oracle tests will be skipped"
  fi
fi
