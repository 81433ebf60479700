#!/usr/bin/env python3
"""bench/report.py: turns dsk_bench's JSON (--benchmark_out) into the markdown tables of
docs/PERFORMANCE.md: medians of the repetitions, dsk against oneDNN in the same run.

usage: python3 bench/report.py RESULT.json"""
import json
import sys


def main():
    d = json.load(open(sys.argv[1]))
    ctx = d["context"]
    rows = {}
    for b in d["benchmarks"]:
        if b.get("aggregate_name", "median") != "median" or b.get("error_occurred"):
            continue
        name = b["run_name"].split("/min_time")[0].split("/repeats")[0]
        rows[name] = b
    print("Machine: %s CPUs, %s dsk threads, dsk ISA %s, clock %s GHz (measured), stream read %s GB/s, "
          "peak %s GFLOP/s." % (ctx.get("num_cpus"), ctx.get("dsk_threads"), ctx.get("dsk_isa"),
                                ctx.get("dsk_clock_ghz_measured"), ctx.get("dsk_stream_read_gb_s"),
                                ctx.get("dsk_peak_gflop_s")))
    print()
    gemm = sorted({tuple(n.split("/")[1:3]) for n in rows if n.startswith("gemm/")},
                  key=lambda t: (t[0], int(t[1][2:])))
    if gemm:
        print("| N x K | M | dsk fp8 us | oneDNN bf16 us | oneDNN f32 us | dsk vs bf16 | dsk GB/s | "
              "dsk GFLOP/s | dsk roofline | bf16 roofline |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for shape, m in gemm:
            g = {im: rows.get("gemm/%s/%s/%s" % (shape, m, im)) for im in ("dsk_fp8", "onednn_bf16", "onednn_f32")}
            t = {k: (v["real_time"] if v else None) for k, v in g.items()}
            fmt = lambda x: "%.0f" % x if x else "-"
            ratio = "%.2fx" % (t["onednn_bf16"] / t["dsk_fp8"]) if t["dsk_fp8"] and t["onednn_bf16"] else "-"
            dk, bf = g["dsk_fp8"] or {}, g["onednn_bf16"] or {}
            print("| %s | %s | %s | %s | %s | %s | %.1f | %.0f | %.2f | %.2f |" % (
                shape, m[2:], fmt(t["dsk_fp8"]), fmt(t["onednn_bf16"]), fmt(t["onednn_f32"]), ratio,
                dk.get("GB", 0), dk.get("GFLOP", 0), dk.get("roofline", 0), bf.get("roofline", 0)))
        print()
    other = [n for n in rows if not n.startswith("gemm/")]
    if other:
        print("| benchmark | kernel | us | GB/s | GFLOP/s | roofline |")
        print("|---|---|---|---|---|---|")
        for n in sorted(other):
            b = rows[n]
            print("| %s | %s | %.0f | %.2f | %.1f | %.3f |" % (n, b.get("label", ""), b["real_time"], b.get("GB", 0),
                                                           b.get("GFLOP", 0), b.get("roofline", 0)))


if __name__ == "__main__":
    main()
