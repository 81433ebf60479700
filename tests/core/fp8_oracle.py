"""Independent oracle for dsk's FP8 conversions: ml_dtypes (PyPI), not dsk's own code.

Checks all 256 codes of e4m3fn, e5m2, e4m3fnuz, e5m2fnuz decode identically, and that
100k random in-range float32 values (plus every midpoint between adjacent codes, and
one float ulp each side) encode to the code ml_dtypes' round-to-nearest-even cast gives.
Out-of-range values are not compared (ml_dtypes does not saturate; dsk follows PTX
satfinite, tested in test_dtype.c). Exit 77 (skipped) when numpy/ml_dtypes are absent."""
import subprocess
import sys

try:
    import numpy as np
    import ml_dtypes
except ImportError:
    print("SKIPPED: numpy/ml_dtypes not installed")
    sys.exit(77)

exe = sys.argv[1]
fmts = {"e4m3": ml_dtypes.float8_e4m3fn, "e5m2": ml_dtypes.float8_e5m2,
        "e4m3fnuz": ml_dtypes.float8_e4m3fnuz, "e5m2fnuz": ml_dtypes.float8_e5m2fnuz}
fails = 0
checks = 0
dump = subprocess.run([exe, "--dump"], capture_output=True, text=True, check=True).stdout.split("\n")
for line in dump:
    if not line:
        continue
    name, code, val = line.split()
    ref = np.array([int(code)], dtype=np.uint8).view(fmts[name]).astype(np.float64)[0]
    got = float.fromhex(val) if "nan" not in val and "inf" not in val else float(val)
    checks += 1
    same = (np.isnan(ref) and np.isnan(got)) or (ref == got and np.signbit(ref) == np.signbit(got))
    if not same:
        fails += 1
        print(f"FAIL decode {name} code {code}: dsk {got}, ml_dtypes {ref}")

rng = np.random.default_rng(int(sys.argv[2]) if len(sys.argv) > 2 else None)
lines, expect = [], []
for name, dt in fmts.items():
    mx = float(ml_dtypes.finfo(dt).max)
    codes = np.arange(256, dtype=np.uint8).view(dt).astype(np.float32)
    fin = np.sort(np.unique(codes[np.isfinite(codes)]))
    mids = ((fin[1:] + fin[:-1]) / 2).astype(np.float32)
    xs = np.concatenate([
        rng.uniform(-mx, mx, 40000).astype(np.float32),
        (rng.standard_normal(40000) * rng.choice([1e-3, 1e-1, 1, 10], 40000)).astype(np.float32),
        mids, np.nextafter(mids, np.float32(np.inf)), np.nextafter(mids, np.float32(-np.inf))])
    xs = xs[np.abs(xs) <= mx]
    ref = xs.astype(dt).view(np.uint8)
    for x, r in zip(xs, ref):
        lines.append(f"{name} {float(x).hex()}")
        expect.append(int(r))
out = subprocess.run([exe, "--encode"], input="\n".join(lines) + "\n", capture_output=True, text=True,
                     check=True).stdout.split()
for line, e, g in zip(lines, expect, out):
    checks += 1
    if int(g) != e:
        fails += 1
        if fails < 20:
            print(f"FAIL encode {line}: dsk {g}, ml_dtypes {e}")
if len(out) != len(expect):
    fails += 1
    print(f"FAIL encode: {len(out)} results for {len(expect)} inputs")
print(f"{checks - fails} passed, {fails} failed")
sys.exit(1 if fails else 0)
