#!/usr/bin/env bash
# Shared-memory bank conflicts of GEMM kernels without a GPU: runs one GEMM per argument set
# (examples/gemm_once.rs, checked against the f64 reference) on the emulator's race-checking build
# with its bank profile on (LK_EMU_BANKS; tools/cuda-emu/banks.cpp), and prints, per kernel, the
# shared-memory wavefronts of its warp requests against the fewest they could take (the excess is
# what ncu calls excessive wavefronts), with the source lines of the requests that take more.
#
# Usage: scripts/emu-banks.sh "KERNEL MxNxK [OP [PRECISION]]" ...
#   e.g. scripts/emu-banks.sh "Simt64Warp 1024x400x784 NT" "TensorCore128 256x256x128 NN bf16"
#   LK_EMU_SM=90 for the Hopper-only kernels (an emulated sm_90).
# Each launch runs on the CPU under the race checker too (minutes for a training-size product).
set -euo pipefail
cd "$(dirname "$0")/.."

if (($# == 0)); then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
bash scripts/install-cuda-toolchain.sh >/dev/null
export CUDA_HOME=$PWD/.cuda-toolchain/cuda
emu=target/cuda-emu-race
python3 tools/cuda-emu/build.py --racecheck "$emu" >/dev/null
cargo build --release --features cuda --example gemm_once -q
for run in "$@"; do
  read -r kernel shape op precision <<<"$run"
  echo "== $kernel $shape ${op:-NN} ${precision:-f32}"
  LD_LIBRARY_PATH=$PWD/$emu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} LK_EMU_BANKS=1 \
    target/release/examples/gemm_once --kernel "$kernel" --shape "$shape" --op "${op:-NN}" \
    --precision "${precision:-f32}"
done
