#!/usr/bin/env bash
# Runner copied into gpu-bundle/ by scripts/gpu-check.sh; runs on the GPU machine (no Rust, no
# network). Usage: bash gpu-bundle/run.sh [quick]   ("quick" skips the sanitizer passes)
set -u
here=$(cd "$(dirname "$0")" && pwd)
out=${OUT:-$here/out}
mkdir -p "$out"
export LATENTKIT_REQUIRE_CUDA=1
export LATENTKIT_MNIST_SUBSET=$here/data/mnist-subset
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export LD_LIBRARY_PATH=$CUDA_HOME/lib64:${LD_LIBRARY_PATH:-}
step_timeout=${STEP_TIMEOUT:-240}
sanitizer=$CUDA_HOME/bin/compute-sanitizer

date -u +"date: %Y-%m-%dT%H:%M:%SZ"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not available"

table=()
run_step() {
  local name=$1
  shift
  local t0 t1 status
  t0=$(date +%s.%N)
  if timeout "$step_timeout" "$@" >"$out/$name.log" 2>&1; then status=PASS; else status="FAIL($?)"; fi
  t1=$(date +%s.%N)
  table+=("$(printf '| %-28s | %-9s | %7.1f s |' "$name" "$status" "$(awk -v a="$t0" -v b="$t1" "BEGIN{print b-a}")")")
  if [[ $status != PASS ]]; then
    echo "---- $name: $status, last lines of $out/$name.log"
    tail -n 25 "$out/$name.log"
  fi
}

for t in "$here"/tests/*; do
  run_step "test:$(basename "$t")" "$t"
done

if [[ ${1:-} != quick && -x $sanitizer ]]; then
  for t in elementwise loss optim gemm; do
    [[ -x $here/tests/$t ]] || continue
    run_step "memcheck:$t" "$sanitizer" --tool memcheck --error-exitcode 1 --print-limit 20 "$here/tests/$t" --test-threads 1
    run_step "racecheck:$t" "$sanitizer" --tool racecheck --error-exitcode 1 --print-limit 20 "$here/tests/$t" --test-threads 1 --skip grid_stride
  done
fi

run_step "bench_kernels" "$here/bin/bench_kernels" --device cuda --samples 25
run_step "bench_vae" "$here/bin/bench_vae" --device cuda --samples 25 --data "$here/data/mnist-full"
run_step "train_vae" "$here/bin/train_vae" --device cuda --data "$here/data/mnist-full" --epochs 10 --iwae-k 100 --out "$out/vae-gpu"
if [[ -f $here/torch_baselines.py ]] && python3 -c 'import torch' 2>/dev/null; then
  pylib=$here/pylib
  ls "$here"/wheels/*.whl >/dev/null 2>&1 && python3 -m pip install --quiet --no-deps --target "$pylib" "$here"/wheels/*.whl >/dev/null 2>&1
  PYTHONPATH=$pylib:${PYTHONPATH:-} run_step "torch_baselines" python3 "$here/torch_baselines.py" --out "$out/baselines.json" --only "${BASELINES:-ceil,gemm,latent,vae}"
fi

echo
for log in bench_kernels bench_vae train_vae; do
  echo "== $log =="
  tail -n 30 "$out/$log.log"
done
[[ -f $out/torch_baselines.log ]] && { echo "== torch_baselines =="; tail -n 40 "$out/torch_baselines.log"; }
echo
echo "| step                         | status    |    time   |"
echo "|------------------------------|-----------|-----------|"
printf '%s\n' "${table[@]}"
printf '%s\n' "${table[@]}" | grep -q FAIL && exit 1
exit 0
