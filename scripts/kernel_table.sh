#!/usr/bin/env bash
# Prints the README's kernel table: for each GPU, the tile the tuner picks (by PREDICTED
# time) for every FP8 GEMM shape of a DeepSeek-V3 step, with ptxas's resource report of
# that kernel (measured by ptxas -v on the exported PTX).
# Usage: scripts/kernel_table.sh [BUILD_DIR] [PHASE] [BATCH]
set -eu
build=${1:-build}; phase=${2:-decode}; batch=${3:-128}
dsk="$build/dsk"
ptxas=$(command -v ptxas || echo /usr/local/cuda/bin/ptxas)
[ -x "$ptxas" ] || { echo "ptxas not found: the resource columns need it" >&2; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "| GPU | op | shape (M,N,K) | kernel (tuner's pick) | predicted us | bound | regs | smem B | spill B |"
echo "|---|---|---|---|---|---|---|---|---|"
for gpu in h800 h20 h100 h200 4090; do
  "$dsk" export --gpu "$gpu" --model deepseek-v3 --phase "$phase" --batch "$batch" --out "$tmp/$gpu" > /dev/null
  python3 - "$tmp/$gpu" "$gpu" "$ptxas" <<'PY'
import json, re, subprocess, sys
d, gpu, ptxas = sys.argv[1:]
m = json.load(open(f"{d}/manifest.json"))
arch = m["arch"]
for k in m["kernels"]:
    out = subprocess.run([ptxas, f"-arch={arch}", "-v", f"{d}/{k['ptx']}", "-o", "/dev/null"],
                         capture_output=True, text=True).stderr
    regs = re.search(r"Used (\d+) registers", out)
    spill = re.search(r"(\d+) bytes spill stores", out)
    smem = k["dynamic_smem"] + k["static_smem"]
    shape = ",".join(str(x) for x in k["shape"])
    print(f"| {gpu} | {k['name']} | {shape} | `{k['kernel']}` | {k['predicted_us']:.1f} | {k['predicted_bound']} "
          f"| {regs.group(1) if regs else '?'} | {smem} | {spill.group(1) if spill else '?'} |")
PY
done
