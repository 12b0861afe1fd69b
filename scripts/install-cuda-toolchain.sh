#!/usr/bin/env bash
# Installs the CUDA 13.0 compiler (nvcc, ptxas, crt headers, cudart headers, CCCL, NVVM) from PyPI
# wheels into a project-local, git-ignored folder. Idempotent: a second run with the same pins is a
# no-op. All wheels are pinned to 13.0.x together: a newer nvidia-nvvm emits PTX that the 13.0
# ptxas rejects.
#
# Usage: scripts/install-cuda-toolchain.sh [PREFIX]     (default: <repo>/.cuda-toolchain)
# Then:  export CUDA_HOME=<PREFIX>/cuda   (build.rs also finds it there without the export)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
prefix=${1:-$repo/.cuda-toolchain}
cuda_home=$prefix/cuda
python=${PYTHON:-python3}

pins=(
  "nvidia-cuda-nvcc==13.0.88"
  "nvidia-cuda-crt==13.0.88"
  "nvidia-cuda-runtime==13.0.96"
  "nvidia-cuda-cccl==13.0.85"
  "nvidia-nvvm==13.0.88"
)
stamp=$prefix/.installed
want=$(printf '%s\n' "${pins[@]}")

if [[ -f $stamp && "$(cat "$stamp")" == "$want" && -x $cuda_home/bin/nvcc ]]; then
  echo "CUDA toolchain already installed in $cuda_home"
else
  rm -rf "$prefix"
  mkdir -p "$prefix/site"
  "$python" -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$prefix/site" "${pins[@]}"

  # The wheels put each component under site/nvidia/cu13/{bin,include,lib,nvvm}; merge them into
  # one CUDA_HOME-shaped tree so nvcc finds ptxas, cicc (nvvm/bin), crt and cudart headers.
  src=$prefix/site/nvidia/cu13
  if [[ ! -d $src ]]; then
    src=$(dirname "$(find "$prefix/site" -type f -name nvcc -path '*/bin/*' | head -1)")/..
  fi
  mkdir -p "$cuda_home"
  cp -a "$src"/. "$cuda_home"/
  chmod +x "$cuda_home"/bin/* "$cuda_home"/nvvm/bin/* 2>/dev/null || true
  # nvcc looks for lib64; the wheels ship lib.
  if [[ -d $cuda_home/lib && ! -e $cuda_home/lib64 ]]; then ln -s lib "$cuda_home/lib64"; fi
  "$cuda_home/bin/nvcc" --version >/dev/null
  echo "$want" >"$stamp"
  echo "CUDA toolchain installed in $cuda_home"
fi

"$cuda_home/bin/nvcc" --version | tail -2
echo "export CUDA_HOME=$cuda_home"
