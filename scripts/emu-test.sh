#!/usr/bin/env bash
# Runs the test suite's CUDA halves on the CPU: builds the CUDA emulator (tools/cuda-emu, a libcuda.so.1
# that runs kernels/*.cu compiled for the host, one fiber per CUDA thread) and runs
# `cargo test --release --features cuda` against it with LATENTKIT_REQUIRE_CUDA=1, so every
# CPU-vs-CUDA parity test runs its CUDA half (the emulated GPU is an sm_80: the Hopper-only wgmma
# kernels are not built for it and their tests skip, as on an A100).
#
# Usage: scripts/emu-test.sh [cargo test arguments, e.g. --test gemm -- some_filter]
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-cuda-toolchain.sh >/dev/null
export CUDA_HOME=$PWD/.cuda-toolchain/cuda
if ! command -v "${CXX:-g++}" >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq g++ >/dev/null
fi
python3 tools/cuda-emu/build.py target/cuda-emu

export LD_LIBRARY_PATH=$PWD/target/cuda-emu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LATENTKIT_REQUIRE_CUDA=1
cargo test --release --features cuda "$@"
