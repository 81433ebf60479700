#!/usr/bin/env python3
"""tests/refs/oracle.py: an independent numpy oracle for the MLA, MoE and layer references.

Written from the DeepSeek-V3 definitions (model.py's Gate, precompute_freqs_cis,
apply_rotary_emb; FlashMLA's decode contract), not from the C code. Vectorized numpy
where the C reference loops, so the two share no structure.

Usage: oracle.py OP DIR key=value...   Inputs are raw little-endian files DIR/NAME.bin
(float64 for real tensors, int32 for index tensors); outputs are written the same way.
"""
import math
import sys

import numpy as np


def load(d, name, dtype=np.float64, shape=None):
    a = np.fromfile(f"{d}/{name}.bin", dtype=dtype)
    return a.reshape(shape) if shape is not None else a


def save(d, name, a):
    np.ascontiguousarray(a).tofile(f"{d}/{name}.bin")


def mla_decode(d, B, H, D, dv, num_pages, max_pages, scale):
    q = load(d, "q", shape=(B, H, D))
    cache = load(d, "kv_cache", shape=(num_pages, 64, D))
    table = load(d, "block_table", np.int32, (B, max_pages))
    lens = load(d, "seq_lens", np.int32, (B,))
    out = np.zeros((B, H, dv))
    lse = np.zeros((B, H))
    for b in range(B):
        n = int(lens[b])
        pages = table[b, : (n + 63) // 64]
        kv = cache[pages].reshape(-1, D)[:n]          # [n, D] gathered rows
        s = scale * (q[b] @ kv.T)                      # [H, n]
        m = s.max(axis=1, keepdims=True)
        p = np.exp(s - m)
        out[b] = (p @ kv[:, :dv]) / p.sum(axis=1, keepdims=True)
        lse[b] = np.logaddexp.reduce(s, axis=1)
    save(d, "out", out)
    save(d, "lse", lse)


def mla_prefill(d, T, H, Dqk, Dv, B, scale):
    q = load(d, "q", shape=(T, H, Dqk))
    k = load(d, "k", shape=(T, H, Dqk))
    v = load(d, "v", shape=(T, H, Dv))
    cu = load(d, "cu_seqlens", np.int32, (B + 1,))
    out = np.zeros((T, H, Dv))
    lse = np.zeros((T, H))
    for i in range(B):
        a, e = int(cu[i]), int(cu[i + 1])
        n = e - a
        if n == 0:
            continue
        s = scale * np.einsum("ihd,jhd->hij", q[a:e], k[a:e])   # [H, n, n]
        s = np.where(np.tril(np.ones((n, n), bool))[None], s, -np.inf)
        m = s.max(axis=2, keepdims=True)
        p = np.exp(s - m)
        l = p.sum(axis=2, keepdims=True)
        out[a:e] = np.einsum("hij,jhd->ihd", p / l, v[a:e])
        lse[a:e] = (m + np.log(l))[:, :, 0].T
    save(d, "out", out)
    save(d, "lse", lse)


def route(d, T, E, n_group, topk_group, top_k, norm, factor, scoring, has_bias):
    logits = load(d, "logits", shape=(T, E))
    bias = load(d, "bias", shape=(E,)) if has_bias else np.zeros(E)
    if scoring == 1:
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        s = z / z.sum(axis=1, keepdims=True)
    else:
        s = 1.0 / (1.0 + np.exp(-logits))
    b = s + bias
    if n_group > 1:
        g = b.reshape(T, n_group, -1)
        gscore = np.sort(g, axis=2)[:, :, -2:].sum(axis=2)          # top-2 sum per group
        keep = np.argsort(-gscore, axis=1, kind="stable")[:, :topk_group]
        mask = np.ones((T, n_group), bool)
        np.put_along_axis(mask, keep, False, axis=1)
        b = np.where(np.repeat(mask, E // n_group, axis=1), -np.inf, b)
    idx = np.argsort(-b, axis=1, kind="stable")[:, :top_k]           # ties: lower index
    w = np.take_along_axis(s, idx, axis=1)
    if norm:
        w = w / w.sum(axis=1, keepdims=True)
    w = w * factor
    save(d, "topk_idx", idx.astype(np.int32))
    save(d, "topk_w", w)


def rope(d, T, nh, dim, theta, factor, orig, beta_fast, beta_slow, attn_factor):
    x = load(d, "x", shape=(T, nh, dim))
    pos = load(d, "positions", np.int32, (T,))
    freqs = 1.0 / (theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    if factor > 1:
        def corr_dim(rot):
            return dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(theta))
        low = max(math.floor(corr_dim(beta_fast)), 0)
        high = min(math.ceil(corr_dim(beta_slow)), dim - 1)
        if low == high:
            high += 0.001
        ramp = np.clip((np.arange(dim // 2) - low) / (high - low), 0, 1)
        smooth = 1 - ramp
        freqs = freqs / factor * (1 - smooth) + freqs * smooth
    save(d, "freqs", freqs)
    cis = attn_factor * np.exp(1j * np.outer(pos.astype(np.float64), freqs))   # [T, dim/2]
    xc = x[..., 0::2] + 1j * x[..., 1::2]
    y = xc * cis[:, None, :]
    out = np.empty_like(x)
    out[..., 0::2] = y.real
    out[..., 1::2] = y.imag
    save(d, "out", out)


def rmsnorm(d, T, Hd, eps):
    x = load(d, "x", shape=(T, Hd))
    w = load(d, "weight", shape=(Hd,))
    save(d, "out", x / np.sqrt((x * x).mean(axis=1, keepdims=True) + eps) * w)


def swiglu(d, T, I):
    gu = load(d, "gate_up", shape=(T, 2 * I))
    g, u = gu[:, :I], gu[:, I:]
    save(d, "out", g * (1.0 / (1.0 + np.exp(-g))) * u)


def main():
    op, d = sys.argv[1], sys.argv[2]
    kw = {}
    for a in sys.argv[3:]:
        k, v = a.split("=", 1)
        try:
            kw[k] = int(v)
        except ValueError:
            kw[k] = float(v)
    {"mla_decode": mla_decode, "mla_prefill": mla_prefill, "route": route, "rope": rope,
     "rmsnorm": rmsnorm, "swiglu": swiglu}[op](d, **kw)


if __name__ == "__main__":
    main()
