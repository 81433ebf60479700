#!/bin/sh
# tests/model/fuzz/run_fuzz.sh TARGET SRC_DIR BIN_DIR SECONDS
# Builds the libFuzzer target TARGET (json | safetensors) with clang (-fsanitize=fuzzer,
# address,undefined) from the parser sources, replays the kept regression inputs
# (tests/model/fuzz/regress_TARGET: inputs that once crashed), then fuzzes for SECONDS
# from the seed corpus. Exit 77 (ctest: Skipped) when no clang with the libFuzzer runtime
# is installed (Debian: clang-19 + libclang-rt-19-dev, scripts/install-deps.sh).
set -u
target=$1 src=$2 bin=$3 secs=$4
cc=""
for c in clang-19 clang; do
  if command -v "$c" >/dev/null 2>&1; then
    printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n){return 0;}\n' > "$bin/probe_$target.c"
    if "$c" -fsanitize=fuzzer "$bin/probe_$target.c" -o "$bin/probe_$target" >/dev/null 2>&1; then cc=$c; break; fi
  fi
done
if [ -z "$cc" ]; then
  echo "SKIPPED: no clang with the libFuzzer runtime (install clang-19 and libclang-rt-19-dev)"
  exit 77
fi
exe="$bin/fuzz_$target"
"$cc" -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$src" -I"$src/include" -I"$bin/../../generated" \
  "$src/tests/model/fuzz/fuzz_$target.c" "$src/core/json.c" "$src/model/safetensors.c" \
  "$src/core/status.c" "$src/core/dtype.c" -lm -o "$exe" || { echo "FAIL: building $exe with $cc"; exit 1; }
regress="$src/tests/model/fuzz/regress_$target"
for f in "$regress"/*; do
  case "$f" in *README.md|*"*") continue ;; esac
  "$exe" "$f" >/dev/null 2>&1 || { echo "FAIL: kept regression input $f crashes again"; exit 1; }
done
corpus="$bin/corpus_$target"
mkdir -p "$corpus" "$bin/crashes_$target"
cp -n "$src/tests/model/fuzz/corpus_$target"/* "$corpus"/ 2>/dev/null
"$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 -max_len=4096 \
  -artifact_prefix="$bin/crashes_$target/" "$corpus" 2>&1 | tail -n 15
rc=$?
if ls "$bin/crashes_$target"/* >/dev/null 2>&1; then
  echo "FAIL: crashing inputs in $bin/crashes_$target (copy them to $regress to keep them as regression tests)"
  exit 1
fi
echo "fuzz_$target: ${secs}s with $cc, no crash"
exit 0
