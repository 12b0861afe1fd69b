#!/usr/bin/env python3
"""BENCHMARKS.md's GEMM ratio table from one `bench_gemm --measure-all` log (scripts/gpu-run.sh's
bench_gemm.log), so that the table is made from the log, not by hand.

    python3 bench/gemm_ratio_table.py bench/results/2026-11-27-h100-run4/bench_gemm.log

Columns (ratio = cuBLAS time / ours, > 1: ours faster):
- f32 Auto: the bench row of the fixed rule the binary was built with;
- f32 rule of this commit: `ops::gemm::auto_kernel`'s f32 choice (mirrored below: keep in step
  with src/ops/gemm/mod.rs; tests/gemm.rs asserts the same choices), timed from the log's
  measured-choice candidates, against the Auto row's cuBLAS time;
- f32 measured choice: the MeasureAll bench row;
- TF32: the best ratio of the TF32 rows;
- bf16: the fastest `mma.sync` and `wgmma` versions among the measured-choice candidates, against
  the fastest cuBLAS time of the shape's bf16 rows (cuBLAS's time moves by up to ~20% between rows
  of one shape: the fastest is the one least favourable to us).
"""
import re
import sys

SMS = 132


def splitk_splits(m, n, k, sms):
    tiles = -(-m // 64) * -(-n // 64)
    steps = -(-k // 16)
    want = -(-(4 * sms) // max(tiles, 1))
    fit = (1 << 22) // max(m * n, 1)
    return max(min(want, steps // 4, fit), 1)


def auto_f32(m, n, k, sms=SMS):
    tiles = lambda t: -(-m // t) * -(-n // t)
    skinny = min(m, n) < 64
    splits = splitk_splits(m, n, k, sms) >= 2
    if tiles(128) >= sms and min(m, n) >= 1024:
        return "Simt128WarpDb"
    if k >= 1024 and splits:
        return "Simt64WarpDbSplitK"
    if not skinny and tiles(64) >= sms // 2:
        return "Simt64WarpDb"
    if not skinny and k >= 512 and splits:
        return "Simt64WarpDbSplitK"
    return "Tiled16" if k < 64 else "Simt32SlicedK"


def main(path):
    rows = {}  # (shape label, mnk) -> list of (precision, kernel, ours, cublas, ratio)
    order = []
    cands = {}  # (mnk, op, input, tc) -> {kernel: µs}
    for line in open(path, encoding="utf-8"):
        f = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(f) == 9 and f[2] in ("F32", "Tf32", "Bf16") and re.match(r"\d+×\d+×\d+$", f[1]):
            key = (f[0], f[1])
            if key not in rows:
                rows[key] = []
                order.append(key)
            rows[key].append((f[2], f[3], float(f[4]), float(f[6]), float(f[8])))
        elif len(f) == 6 and f[2] in ("F32", "BF16") and re.match(r"\d+×\d+×\d+$", f[0]):
            times = {}
            for c in f[5].split(", "):
                name, t = c.rsplit(" ", 1)
                if t not in ("–", "-"):
                    times[name] = float(t)
            cands[(f[0], f[1], f[2], f[3])] = times
    print("| shape | m×n×k | f32 Auto: kernel, µs / cuBLAS µs | ratio | f32 rule of this commit: kernel, µs, ratio "
          "| f32 measured choice: kernel, ratio | TF32 best ratio | bf16 `mma.sync` fastest: kernel, µs "
          "| bf16 `wgmma` fastest: kernel, µs, TFLOP/s | cuBLAS bf16 µs | `mma.sync` ratio | `wgmma` ratio |")
    print("|" + "---|" * 12)
    # Candidate lists come in bench order; the op of the shape's n-th appearance is the n-th list.
    seen = {}
    for label, mnk in order:
        m, n, k = (int(x) for x in mnk.split("×"))
        rs = rows[(label, mnk)]
        auto = next(r for r in rs if r[0] == "F32" and r[1].endswith("(Auto)"))
        meas = next(r for r in rs if r[0] == "F32" and r[1].endswith("(MeasureAll)"))
        tf32 = max(r[4] for r in rs if r[0] == "Tf32")
        cublas_bf16 = min(r[3] for r in rs if r[0] == "Bf16")
        i = seen.get(mnk, 0)
        seen[mnk] = i + 1
        f32c = [v for kk, v in cands.items() if kk[0] == mnk and kk[2] == "F32" and kk[3] == "false"][i]
        bf16c = [v for kk, v in cands.items() if kk[0] == mnk and kk[2] == "BF16"][i]
        rule = auto_f32(m, n, k)
        rule_t = f32c[rule]
        mma = min(((t, kn) for kn, t in bf16c.items() if kn.startswith("TensorCore")), default=None)
        wg = min(((t, kn) for kn, t in bf16c.items() if kn.startswith("Wgmma")), default=None)
        name = lambda s: s.split(" (")[0]
        wg_cell = f"{wg[1]} {wg[0]:.1f}, {2 * m * n * k / wg[0] / 1e6:.0f}" if wg else "—"
        wg_ratio = f"{cublas_bf16 / wg[0]:.2f}" if wg else "—"
        print(f"| {label} | {mnk} | {name(auto[1])} {auto[2]:.1f} / {auto[3]:.1f} | {auto[4]:.2f} "
              f"| {rule} {rule_t:.1f}, {auto[3] / rule_t:.2f} | {name(meas[1])} {meas[4]:.2f} | {tf32:.2f} "
              f"| {mma[1]} {mma[0]:.1f} | {wg_cell} | {cublas_bf16:.1f} | {cublas_bf16 / mma[0]:.2f} "
              f"| {wg_ratio} |")


if __name__ == "__main__":
    main(sys.argv[1])
