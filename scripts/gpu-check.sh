#!/usr/bin/env bash
# GPU checks in two halves, because the GPU machine has the CUDA driver and PyTorch but no Rust
# toolchain and no network:
#
#   scripts/gpu-check.sh            here (no GPU needed): builds the release test and bench binaries
#                                   with `cuda` into gpu-bundle/ (git-ignored, < 64 MiB; the binaries
#                                   packed into binaries.tar.xz, which run.sh unpacks) together
#                                   with everything the run needs (MNIST subset, baseline script,
#                                   the pytorch-metric-learning wheel, the runner).
#   bash gpu-bundle/run.sh          on the GPU machine: every test with LATENTKIT_REQUIRE_CUDA=1,
#                                   the kernel tests under compute-sanitizer (memcheck, racecheck),
#                                   the bench binary and the PyTorch/cuBLAS baselines in the same
#                                   call, then a short table. Logs land in gpu-bundle/out, packed
#                                   into $OUT/gpu-logs.tgz when $OUT is set.
#
# With the device tool (carry=["gpu-bundle"]): one call, timeout_s=585, run(command="STEP_TIMEOUT=150
# DEADLINE=550 bash gpu-bundle/run.sh tests bench baselines train sanitize synccheck profile")
# (480 s on an H100 on 2026-11-27, start-up ~30 s more), then at once, while the machine is still
# warm (30 s), the rest of the 15 device minutes on "racegemm racemining" with STEP_TIMEOUT and
# DEADLINE set to what is left less ~15 s; then give the machine back. A run after changes to some
# kernels only can leave out steps and binaries (SKIP_STEPS, SANITIZE_TESTS, BASELINES: gpu-run.sh),
# as the second and third H100 runs of 2026-11-27 did (BENCHMARKS.md; the third, GEMM only, took
# 414 s: "tests baselines bench sanitize synccheck racegemm"). To find which wgmma version stops
# under racecheck, "racewgmma" checks them one per step. SANITIZE_JOBS=8 runs the sanitizer steps
# eight at a time, one per test (gpu-run.sh; the device machine has 16 cores), so that memcheck,
# synccheck and racecheck of the gemm tests can share one call with the tests and benches (the
# fourth H100 run of 2026-11-27, 403 s: SANITIZE_JOBS=8 STEP_TIMEOUT=240 DEADLINE=560
# SANITIZE_TESTS=gemm SKIP_STEPS=... BASELINES="ceil,gemm" ... tests baselines bench sanitize
# synccheck racewgmma racegemm; BENCHMARKS.md).
# When the gemm tests fail there, run.sh tests the versions checked on a GPU together and each
# unchecked one alone, and the benches measure every version but the unchecked ones that failed
# (--gemm-exclude; the step table names them): one broken candidate costs about ten short runs of
# the gemm tests (each with one version's cases and the tests of Auto), not the measurement of all
# the others.
# Helpers working on kernels should not call the device themselves: the 15 minutes are the session's.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
bundle=$repo/gpu-bundle
cd "$repo"

bash scripts/install-libclang.sh
bash scripts/install-cuda-toolchain.sh >/dev/null
export CUDA_HOME=$repo/.cuda-toolchain/cuda

rm -rf "$bundle"
mkdir -p "$bundle/tests" "$bundle/bin" "$bundle/data" "$bundle/wheels"

echo "building test binaries (release, --features cuda)..."
cargo test --release --features cuda --no-run --message-format=json 2>/dev/null |
  python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("profile", {}).get("test") and m.get("executable"):
        kind = m["target"]["kind"][0]
        name = m["target"]["name"] if kind == "test" else "lib-" + m["target"]["name"]
        print(name + "\t" + m["executable"])
' | while IFS=$'\t' read -r name exe; do
    cp "$exe" "$bundle/tests/$name"
  done

echo "building bench and example binaries..."
cargo build --release --features cuda --examples --quiet
for ex in bench_kernels bench_gemm bench_vae bench_metric train_vae train_ae train_siamese; do cp "target/release/examples/$ex" "$bundle/bin/"; done
strip "$bundle"/tests/* "$bundle"/bin/*
# Every CUDA binary embeds the same kernel fatbins (SASS for each arch, ~13 MiB), so the loose
# binaries are many times the 64 MiB the device tool carries. One xz stream whose 256 MiB window
# spans more than one binary stores them about once (2026-11-27: 1.2 GiB -> ~10 MiB; a 64 MiB window no longer spanned two binaries);
# -T1 keeps it one stream. gpu-run.sh unpacks it next to itself.
tar -cf - -C "$bundle" bin tests | xz -T1 --lzma2=preset=1,dict=256MiB >"$bundle/binaries.tar.xz"
echo "binaries: $(du -cm "$bundle"/bin/* "$bundle"/tests/* | tail -n 1 | cut -f1) MiB, packed into binaries.tar.xz ($(du -m "$bundle/binaries.tar.xz" | cut -f1) MiB)"
rm -rf "$bundle/bin" "$bundle/tests"

cp -r data/mnist-subset "$bundle/data/"
# Full MNIST (gzip, ~11 MiB) for the epoch benchmark and the GPU training run.
bash scripts/fetch-mnist.sh >/dev/null
mkdir -p "$bundle/data/mnist-full"
for f in data/mnist-full/*-ubyte; do gzip -9 -c "$f" >"$bundle/data/mnist-full/$(basename "$f").gz"; done
cp scripts/gpu-run.sh "$bundle/run.sh"
if [[ -f ../shared/bench/torch_baselines.py ]]; then
  cp ../shared/bench/torch_baselines.py "$bundle/"
else
  echo "warning: ../shared/bench/torch_baselines.py not found; the bundle will skip the baselines" >&2
fi
python3 -m pip download --quiet --disable-pip-version-check --no-deps -d "$bundle/wheels" \
  pytorch-metric-learning==2.9.0 ||
  echo "warning: could not download the pytorch-metric-learning wheel; its baselines will be skipped" >&2

size=$(du -sm "$bundle" | cut -f1)
echo "gpu-bundle: ${size} MiB ($(tar -tJf "$bundle/binaries.tar.xz" | grep -c '^tests/.') test binaries)"
if ((size >= 64)); then
  echo "error: gpu-bundle is ${size} MiB, over the 64 MiB the device tool carries" >&2
  exit 1
fi
