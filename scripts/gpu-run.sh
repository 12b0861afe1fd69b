#!/usr/bin/env bash
# Runner copied into gpu-bundle/ by scripts/gpu-check.sh; runs on the GPU machine (no Rust, no
# network).
#
#   bash gpu-bundle/run.sh [PHASE ...]
#
# PHASEs, in the order they run (whatever order they are named in): tests (every test binary,
# LATENTKIT_REQUIRE_CUDA=1), baselines (../shared/bench/torch_baselines.py, same card, same call),
# bench (bench_kernels, bench_gemm --ceilings (instruction ceilings: bench_gemm_ceilings.log),
# bench_gemm, and bench_vae and bench_metric with the baselines' figures and ratios beside theirs),
# train (10 epochs of the VAE and 5 of the triplet net on full MNIST), sanitize (compute-sanitizer
# memcheck + racecheck on the kernel tests, GEMM first), and, only when named, synccheck (gemm and
# mining tests), profile (ncu on the kernels that miss a target: ncu:*.log), racewgmma (racecheck
# on the Hopper GEMM test, one version a step), racegemm and racemining (racecheck on the gemm and
# on the mining tests: minutes each).
# Default: tests bench baselines train sanitize; `quick` = all but sanitize. One device call is
# limited to 10 minutes: DEADLINE=<seconds> stops starting steps near the end of the call, so
# that one call can hold everything in order of importance and still bring its logs back.
# Seen on an H100 (2026-11-26): `tests bench` 47 s; `sanitize synccheck baselines train` 370 s,
# of which 150 s were the mining racecheck cut off (now the racemining phase).
# SANITIZE_JOBS=N runs the sanitizer phases' steps N at a time in the background, one step per
# test (start_step, sanitize_each below); the default, 1, runs them one after the other, a step
# per test binary, as before. On an H100 (2026-11-27, fourth run) SANITIZE_JOBS=8 took the tests,
# the GEMM benches and baselines, and memcheck, synccheck and racecheck of every gemm test (wgmma
# and tc2 one version a step) through one call in 403 s.
set -u
phases=" ${*:-tests bench baselines train sanitize} "
[[ $phases == " quick " ]] && phases=" tests bench baselines train "
want() { [[ $phases == *" $1 "* ]]; }
here=$(cd "$(dirname "$0")" && pwd)
# Logs go to $here/out; the device tool brings back at most 8 files from $OUT, so with $OUT set
# they are packed into $OUT/gpu-logs.tgz on exit (also when the step in flight is cut off).
out=$here/out
rm -rf "$out"
mkdir -p "$out"
if [[ -n ${OUT:-} ]]; then
  # Checkpoints and embedding dumps stay behind (the device tool returns at most 16 MiB a file).
  trap 'tar czf "$OUT/gpu-logs.tgz" --exclude="*.safetensors" --exclude="*.npy" --exclude="*.tsv" -C "$here" out' EXIT
  trap 'exit 143' TERM INT
fi
export LATENTKIT_REQUIRE_CUDA=1
export LATENTKIT_MNIST_SUBSET=$here/data/mnist-subset
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export LD_LIBRARY_PATH=$CUDA_HOME/lib64:${LD_LIBRARY_PATH:-}
step_timeout=${STEP_TIMEOUT:-240}
# DEADLINE (seconds from the start of this script, 0 = none): no step starts with under 15 s
# left, and each step's limit is cut to what is left, so that one device call ends with its logs.
deadline=${DEADLINE:-0}
# gpu-check.sh packs the binaries (bin/, tests/) into one xz tarball; unpack it next to this script
# (tar with xz, or Python's tarfile where xz is missing).
if [[ -f $here/binaries.tar.xz ]]; then
  tar -xJf "$here/binaries.tar.xz" -C "$here" 2>/dev/null ||
    python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' "$here/binaries.tar.xz" "$here" ||
    { echo "error: could not unpack $here/binaries.tar.xz" >&2; exit 1; }
fi
sanitizer=$CUDA_HOME/bin/compute-sanitizer

date -u +"date: %Y-%m-%dT%H:%M:%SZ"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not available"

table=()
# Whether SKIP_STEPS names step NAME; a name also skips the per-test steps under it
# (synccheck:mining: synccheck:mining:*).
step_asked_off() {
  local w
  for w in ${SKIP_STEPS:-}; do
    [[ $1 == "$w" || $1 == "$w":* ]] && return 0
  done
  return 1
}
# step_gate NAME: whether step NAME may start (SKIP_STEPS, DEADLINE); a step that may not gets its
# table row here. Sets `limit`, the step's time limit.
step_gate() {
  local name=$1 left
  limit=$step_timeout
  # SKIP_STEPS: step names not to run in this call (e.g. "bench_vae train_vae" when only the GEMM
  # and metric-learning figures are wanted).
  if step_asked_off "$name"; then
    table+=("$(printf '| %-28s | %-9s | %7s   |' "$name" "SKIP" "asked")")
    return 1
  fi
  if ((deadline > 0)); then
    left=$((deadline - SECONDS))
    if ((left < 15)); then
      table+=("$(printf '| %-28s | %-9s | %7s   |' "$name" "SKIP" "deadline")")
      return 1
    fi
    if ((left < limit)); then limit=$left; fi
  fi
  return 0
}
# step_status RC LOG: a step's status from its exit code. compute-sanitizer exits 255 with "Target
# application terminated before first instrumented API call" when the program made no CUDA call:
# with one step per test (SANITIZE_JOBS > 1) that is each CPU-side test (on an H100, 2026-11-27,
# five gemm tests, e.g. round_tf32_is_nearest_ties_away); when the test itself passed, the row
# says PASS(cpu), not a failure.
step_status() {
  if (($1 == 0)); then
    echo PASS
  elif grep -q 'terminated before first instrumented API call' "$2" && grep -q '^test result: ok' "$2"; then
    echo 'PASS(cpu)'
  else
    echo "FAIL($1)"
  fi
}
# step_row NAME STATUS SECONDS: the step's table row, and the end of its log when it failed.
step_row() {
  table+=("$(printf '| %-28s | %-9s | %7.1f s |' "$1" "$2" "$3")")
  if [[ $2 != PASS* ]]; then
    echo "---- $1: $2, last lines of $out/$1.log"
    tail -n 25 "$out/$1.log"
  fi
}
# run_timed NAME COMMAND...: runs COMMAND within the step's limit (log $out/NAME.log) and prints
# "STATUS SECONDS".
run_timed() {
  local name=$1 t0 rc
  shift
  t0=$(date +%s.%N)
  timeout "$limit" "$@" >"$out/$name.log" 2>&1
  rc=$?
  echo "$(step_status $rc "$out/$name.log") $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')"
}
# run_step NAME COMMAND...: runs COMMAND now (log $out/NAME.log), within the step's limit.
run_step() {
  local name=$1 result
  shift
  step_gate "$name" || return 0
  result=$(run_timed "$name" "$@")
  step_row "$name" "${result% *}" "${result#* }"
}
# Sanitizer steps may run side by side: SANITIZE_JOBS=N (default 1) keeps up to N of them going at
# once, in the background, each its own process on the one GPU. They are independent test
# processes; what they cost is mostly the tool's instrumentation and the tests' f64 references on
# the CPU (16 cores on the device machine), so N of them take about 1/N of the time in a row.
# Only with the GPU in the Default compute mode (several processes may hold a context); nothing
# timed runs while they do (collect_steps waits for them before the profile phase).
sanitize_jobs=${SANITIZE_JOBS:-1}
if ((sanitize_jobs > 1)); then
  mode=$(nvidia-smi --query-gpu=compute_mode --format=csv,noheader 2>/dev/null | head -n 1)
  if [[ $mode != Default ]]; then
    echo "SANITIZE_JOBS=$sanitize_jobs: the GPU's compute mode is '${mode:-unknown}', not Default: one step at a time"
    sanitize_jobs=1
  fi
fi
pending=()
# start_step NAME COMMAND...: as run_step, in the background when SANITIZE_JOBS > 1 (its row is
# added by collect_steps, in the order the steps started).
start_step() {
  local name=$1
  shift
  if ((sanitize_jobs <= 1)); then
    run_step "$name" "$@"
    return
  fi
  # (A step SKIP_STEPS names is passed over at once; the others wait for a free slot, and their
  # limit is what is left before DEADLINE then.)
  step_asked_off "$name" && { step_gate "$name"; return 0; }
  while (($(jobs -rp | wc -l) >= sanitize_jobs)); do wait -n; done
  step_gate "$name" || return 0
  run_timed "$name" "$@" >"$out/.$name.result" &
  pending+=("$name")
}
# collect_steps: waits for the background steps and adds their rows.
collect_steps() {
  local name result
  wait
  for name in ${pending[@]+"${pending[@]}"}; do
    result=$(cat "$out/.$name.result" 2>/dev/null || echo "FAIL(lost) 0")
    step_row "$name" "${result% *}" "${result#* }"
    rm -f "$out/.$name.result"
  done
  pending=()
}
# sanitize_each NAME TOOL BINARY [ARGS...]: compute-sanitizer TOOL on the test binary, one step
# (NAME) for all of its tests; with SANITIZE_JOBS > 1 one step per test (NAME:test), so that the
# tests of one binary run side by side too. ARGS (filters, --skip) choose the tests either way.
sanitize_each() {
  local name=$1 tool=$2 bin=$3 test
  shift 3
  local cmd=("$sanitizer" --tool "$tool" --error-exitcode 1 --print-limit 20)
  if ((sanitize_jobs <= 1)); then
    start_step "$name" "${cmd[@]}" "$bin" --test-threads 1 "$@"
    return
  fi
  local tests
  # (A binary that can't list its tests, or lists none, is a failed step, not a silent pass.)
  if ! tests=$("$bin" --list "$@" 2>"$out/$name.log" | sed -n 's/: test$//p') || [[ -z $tests ]]; then
    step_row "$name" "FAIL(list)" 0
    return
  fi
  while read -r test; do
    start_step "$name:$test" "${cmd[@]}" "$bin" --test-threads 1 --exact "$test"
  done <<<"$tests"
}

# Whether the Hopper GEMM (wgmma) may run in the bench and profile phases: decided by its test
# when this call runs the tests phase; otherwise only with WGMMA=1 (a kernel that has never
# passed could hang until it traps).
if want tests; then wgmma_ok=1; else wgmma_ok=${WGMMA:-0}; fi
# Set when this call's test:gemm step passed (every GEMM version but wgmma, which has its own
# flag): the benches then measure among all of them (--measure-all), not only those checked on an
# earlier GPU run.
gemm_ok=0
# Versions whose own tests failed in this call (isolate_versions), left out of every step that
# measures or runs every version (--gemm-exclude).
gemm_exclude=()
# Every GEMM version, one a line: NAME, family (simt, tensor-core, hopper), checked or unchecked.
versions=$("$here/bin/bench_gemm" --list-versions 2>/dev/null) || versions=
# isolate_versions STEP FAMILIES ARGS...: after step STEP of the gemm test binary (ARGS: its test
# filter) failed, the same tests again, once for the versions of FAMILIES (an awk pattern over
# the families of `versions`) checked on an earlier GPU run (step
# STEP-checked) and once for each one not checked yet (STEP-NAME), each in its own process
# (LATENTKIT_TEST_VERSIONS, tests/gemm.rs), so that a kernel that faults can't take the others
# down with it. Succeeds when the checked versions pass; the unchecked ones that fail join
# gemm_exclude, and the benches measure the rest (one broken candidate must not keep the others
# out of a GPU run's measurements).
isolate_versions() {
  local step=$1 families=$2 checked unchecked v
  shift 2
  checked=$(awk -F'\t' -v f="^($families)\$" '$2 ~ f && $3 == "checked" { printf "%s%s", sep, $1; sep = "," }' <<<"$versions")
  unchecked=$(awk -F'\t' -v f="^($families)\$" '$2 ~ f && $3 == "unchecked" { print $1 }' <<<"$versions")
  # (Nothing unchecked: the failure is in a checked version or a test of Auto, and stands.)
  [[ -n $unchecked ]] || return 1
  LATENTKIT_TEST_VERSIONS=$checked run_step "$step-checked" "$here/tests/gemm" "$@"
  [[ ${table[-1]} == *PASS* ]] || return 1
  for v in $unchecked; do
    LATENTKIT_TEST_VERSIONS=$v run_step "$step-$v" "$here/tests/gemm" "$@"
    [[ ${table[-1]} == *PASS* ]] || gemm_exclude+=("$v")
  done
  return 0
}
phase_tests() {
if want tests; then
  # The Hopper GEMM (wgmma + TMA) first and alone, with a short limit: its mbarrier pipeline is
  # the one kernel that could hang (it traps after ~30 s of waiting). The gemm binary then skips it.
  if [[ -x $here/tests/gemm ]]; then
    step_timeout_saved=$step_timeout
    step_timeout=90
    run_step "test:gemm(wgmma)" "$here/tests/gemm" wgmma --test-threads 1
    if [[ ${table[-1]} != *PASS* ]]; then
      wgmma_ok=0
      [[ ${table[-1]} == *FAIL* ]] && isolate_versions "test:gemm(wgmma)" hopper wgmma --test-threads 1 && wgmma_ok=1
    fi
    step_timeout=$step_timeout_saved
  fi
  for t in "$here"/tests/*; do
    if [[ $(basename "$t") == gemm ]]; then
      run_step "test:gemm" "$t" --skip wgmma
      if [[ ${table[-1]} == *PASS* ]] ||
        { [[ ${table[-1]} == *FAIL* ]] && isolate_versions "test:gemm" "simt|tensor-core" --skip wgmma; }; then
        gemm_ok=1
      fi
    else
      run_step "test:$(basename "$t")" "$t"
    fi
  done
fi
}

phase_sanitize() {
if want sanitize && [[ -x $sanitizer ]]; then
  # SANITIZE_TESTS: the test binaries to check (default all of them; a run after changes to some
  # kernels only may name the binaries that launch them).
  for t in ${SANITIZE_TESTS:-gemm elementwise loss optim gemm_tuning latent distance mining}; do
    [[ -x $here/tests/$t ]] || continue
    extra=()
    [[ $t == gemm ]] && extra=("${skip_wgmma[@]}")
    sanitize_each "memcheck:$t" memcheck "$here/tests/$t" "${extra[@]}"
    # grid_stride (one huge launch) is skipped under racecheck; gemm and mining have their own
    # phases (minutes each); gemm_tuning runs the kernels of the gemm tests again (and trains an
    # epoch): memcheck only.
    [[ $t == gemm || $t == mining || $t == gemm_tuning ]] ||
      sanitize_each "racecheck:$t" racecheck "$here/tests/$t" --skip grid_stride "${extra[@]}"
  done
fi
}
phase_racegemm() {

# Optional phase `racegemm` (its own call: on an H100 on 2026-11-27, with 17 GEMM versions, racecheck
# got through 12 of the 15 gemm tests in 150 s and ran out in the tc2 test). The wgmma test first
# (whole; the racewgmma phase takes it one version a step), then the gemm tests but the tc2 one,
# then the tc2 test one version a step (LATENTKIT_TEST_TC2, tests/gemm.rs; RACETC2_VERSIONS
# overrides the list), so that each step fits STEP_TIMEOUT and a slow or failing version is named.
if want racegemm && [[ -x $sanitizer && -x $here/tests/gemm ]]; then
  # (Not when the racewgmma phase already took it version by version in this call.)
  [[ $wgmma_ok == 1 ]] && ! want racewgmma &&
    start_step "racecheck:gemm-wgmma" "$sanitizer" --tool racecheck --error-exitcode 1 --print-limit 20 "$here/tests/gemm" --test-threads 1 wgmma
  sanitize_each "racecheck:gemm" racecheck "$here/tests/gemm" --skip grid_stride --skip wgmma --skip tc2_interior --skip every_gemm_kernel_version
  # The every-version test one SIMT version a step (LATENTKIT_TEST_SIMT): whole, it took 218 s of
  # a 240 s step with 17 versions on 2026-11-27; there are 25 now.
  if simt_versions=$("$here/bin/bench_gemm" --list-simt 2>"$out/racecheck:gemm-simt.log") && [[ -n $simt_versions ]]; then
    for v in $simt_versions; do
      excluded "$v" && continue
      LATENTKIT_TEST_SIMT=$v start_step "racecheck:gemm-simt-$v" "$sanitizer" --tool racecheck --error-exitcode 1 --print-limit 20 "$here/tests/gemm" --test-threads 1 --exact every_gemm_kernel_version_matches_reference
    done
  else
    step_row "racecheck:gemm-simt" "FAIL(list)" 0
  fi
  for v in ${RACETC2_VERSIONS:-TensorCore128x256SwizzledPersistent TensorCore128x256Swizzled TensorCore128x128Swizzled TensorCore128x256Swizzled4Stage}; do
    excluded "$v" && continue
    LATENTKIT_TEST_TC2=$v start_step "racecheck:gemm-tc2-$v" "$sanitizer" --tool racecheck --error-exitcode 1 --print-limit 20 "$here/tests/gemm" --test-threads 1 tc2_interior
  done
fi
}
phase_racewgmma() {

# Optional phase `racewgmma`: racecheck on the Hopper GEMM test one version at a time
# (LATENTKIT_TEST_WGMMA, tests/gemm.rs), each its own step, so that a version that stops under the
# tool is named (on 2026-11-27 the whole test stopped under racecheck with a launch failure and no
# hazard). RACEWGMMA_VERSIONS overrides the list (GemmKernel names).
if want racewgmma && [[ -x $sanitizer && -x $here/tests/gemm && $wgmma_ok == 1 ]]; then
  for v in ${RACEWGMMA_VERSIONS:-Wgmma256Persistent Wgmma128PingPong Wgmma256Multicast Wgmma256PersistentMulticast Wgmma256PersistentEarlyRelease Wgmma256 Wgmma128 TensorCore128x256TmaPersistent}; do
    excluded "$v" && continue
    LATENTKIT_TEST_WGMMA=$v start_step "racecheck:gemm-wgmma-$v" "$sanitizer" --tool racecheck --error-exitcode 1 --print-limit 20 "$here/tests/gemm" --test-threads 1 wgmma
  done
fi
}
phase_racemining() {

# Optional phase `racemining` (its own call: on an H100 on 2026-11-26 racecheck did not get
# through the mining tests in 150 s, stuck in triplet_hard_splits_many_references): racecheck on
# the mining tests, less the finite-difference test (hundreds of tiny forward passes of the
# kernels the other tests run). Give it STEP_TIMEOUT=540 in a call of its own.
if want racemining && [[ -x $sanitizer && -x $here/tests/mining ]]; then
  # RACEMINING_ARGS: more test-binary arguments (e.g. --skip NAME) for a call with less time.
  # shellcheck disable=SC2086
  sanitize_each "racecheck:mining" racecheck "$here/tests/mining" --skip triplet_bwd_matches_finite_differences ${RACEMINING_ARGS:-}
fi
}
phase_synccheck() {

# Optional phase `synccheck` (not in the default list, to keep `tests sanitize` inside one call):
# barrier misuse in the kernels with the most barriers (tiled GEMM, cp.async pipeline, mining tiles).
if want synccheck && [[ -x $sanitizer ]]; then
  for t in gemm mining; do
    [[ -x $here/tests/$t ]] || continue
    extra=()
    [[ $t == gemm ]] && extra=("${skip_wgmma[@]}")
    sanitize_each "synccheck:$t" synccheck "$here/tests/$t" "${extra[@]}"
  done
fi
}

phase_bench() {
if want bench; then
run_step "bench_kernels" "$here/bin/bench_kernels" --device cuda --samples 25
# GEMM against cuBLAS: f32, TF32 and bf16 on every shape of the GEMM issue (Auto's kernel), then
# every kernel version on the quick shapes.
# (Without the wgmma rows when its test failed in this call.)
no_wgmma=()
[[ $wgmma_ok == 1 ]] || no_wgmma=(--no-wgmma)
measure_all=()
[[ $gemm_ok == 1 ]] && measure_all=(--measure-all)
# One tuning file shared by the benches and the trainers: each loads the choices made before it,
# measures the shapes it meets first and saves the union (tuning/README.md: how a shipped table is
# made from it).
tuning=(--gemm-tuning-file "$out/gemm-tuning.txt")
# PyTorch's figures of this call (the baselines phase ran first), printed beside ours.
baselines=()
for f in "$out"/baselines*.json; do [[ -f $f ]] && baselines+=(--baselines "$f"); done
# The issue-rate ceilings of mma.sync bf16 and FFMA f32 (kernels/peak.cu) beside cuBLAS at 4096³:
# what the GEMM targets can be held against (12 probe grids of millisecond launches, then cuBLAS).
run_step "bench_gemm_ceilings" "$here/bin/bench_gemm" --ceilings --samples 20
run_step "bench_gemm" "$here/bin/bench_gemm" --samples 20 "${no_wgmma[@]}" "${measure_all[@]}" ${exclude[@]+"${exclude[@]}"} "${tuning[@]}"
run_step "bench_gemm_all" "$here/bin/bench_gemm" --samples 20 --all --quick "${no_wgmma[@]}" ${exclude[@]+"${exclude[@]}"}
run_step "bench_vae" "$here/bin/bench_vae" --device cuda --samples 25 --data "$here/data/mnist-full" "${measure_all[@]}" ${exclude[@]+"${exclude[@]}"} "${tuning[@]}" ${baselines[@]+"${baselines[@]}"}
# Metric learning: mining, distance and the triplet step in one step; the N = 262,144 batch-hard
# run in its own step, so that a slow or timed-out large run keeps the rest (it skips itself when
# its projection from an N = 16,384 call exceeds --large-budget, 100 s, well inside the timeout).
run_step "bench_metric" "$here/bin/bench_metric" --device cuda --samples 20 --only mining,distance,train ${baselines[@]+"${baselines[@]}"}
run_step "bench_metric_large" "$here/bin/bench_metric" --device cuda --only large
fi
}
phase_profile() {
# Optional phase `profile` (its steps limited to PROFILE_STEP_TIMEOUT, 60 s): Nsight Compute on one
# launch of each kernel that misses a target (BENCHMARKS.md), through the bench binaries' filters;
# the `detailed` sections (speed of light, occupancy, memory tables, source counters) plus warp
# stalls, scheduler and instruction statistics, as text in ncu:<name>.log. `--clock-control none` leaves
# the clocks alone (device README). About 15-30 s per kernel.
if want profile; then
  ncu=$(command -v ncu || echo "$CUDA_HOME/bin/ncu")
  step_timeout_saved=$step_timeout
  step_timeout=${PROFILE_STEP_TIMEOUT:-60}  # per ncu step, whatever STEP_TIMEOUT the other phases use
  if [[ -x $ncu ]]; then
    # `detailed` printed no warp-stall or scheduler tables on the H100 (2026-11-27): add them,
    # and the instruction mix, to say why a kernel waits.
    extra_sections=(--section WarpStateStats --section SchedulerStats --section InstructionStats)
    profile() {  # name, kernel regex, launches to skip, launches to profile, command...
      run_step "ncu:$1" "$ncu" --clock-control none --set detailed "${extra_sections[@]}" -k "regex:$2" --launch-skip "$3" --launch-count "$4" "${@:5}"
    }
    # The products that miss their targets in the fourth H100 run (BENCHMARKS.md), each on the
    # kernel the fixed rule or measured tuning runs there, the versions written for them since
    # (v24–v33), and the questions that run raised: why v19 (one launch) takes twice v18's
    # time at 128×400×784, and why v23 (short k) is no faster than v17 at 8192×400×20. Most
    # wanted first, since the deadline may cut the list (earlier profiles:
    # bench/results/2026-11-27-h100/ncu-*.log).
    gemm=("$here/bin/bench_gemm" --samples 1 --no-wgmma ${exclude[@]+"${exclude[@]}"})
    profile gemm-f32-1024x400x784-v17 '^gemm_simt64_warp_db_f32$' 3 1 "${gemm[@]}" --all --shape 'Y=XWᵀ B=1024 784→400' --precision f32
    profile gemm-f32-1024x400x784-v28 '^gemm_simt128_warp_db_streamk_f32$' 3 1 "${gemm[@]}" --all --shape 'Y=XWᵀ B=1024 784→400' --precision f32
    profile gemm-f32-8192x784x400-v28 '^gemm_simt128_warp_db_streamk_f32$' 3 1 "${gemm[@]}" --all --shape 'dX=dY·W B=8192 784→400' --precision f32
    profile gemm-f32-8192x400x784-v30 '^gemm_simt128x200_warp_db_f32$' 3 1 "${gemm[@]}" --all --shape 'Y=XWᵀ B=8192 784→400' --precision f32
    profile gemm-f32-784x400x8192-v31 '^gemm_simt128x200_warp_db_splitk_fused_f32$' 3 1 "${gemm[@]}" --all --shape 'dW=dYᵀX B=8192 400→784' --precision f32
    profile gemm-f32-400x784x8192-v32 '^gemm_simt200x128_warp_db_splitk_fused_f32$' 3 1 "${gemm[@]}" --all --shape 'dW=dYᵀX B=8192 784→400' --precision f32
    profile gemm-f32-8192x400x20-v25 '^gemm_simt_shortk_persistent_f32$' 3 1 "${gemm[@]}" --all --shape 'dX=dY·W B=8192 400→20' --precision f32
    profile gemm-f32-20x400x8192-v26 '^gemm_simt_small_m_splitk_f32$' 3 1 "${gemm[@]}" --all --shape 'dW=dYᵀX B=8192 400→20' --precision f32
    profile gemm-f32-8192x20x400-v27 '^gemm_simt_small_n_splitk_f32$' 3 1 "${gemm[@]}" --all --shape 'Y=XWᵀ B=8192 400→20' --precision f32
    profile gemm-bf16-4096-v15 '^gemm_tc2p_128x256_bf16$' 3 1 "${gemm[@]}" --all --shape 4096³ --precision bf16
    profile gemm-f32-8192x400x20-v17 '^gemm_simt64_warp_db_f32$' 3 1 "${gemm[@]}" --all --shape 'dX=dY·W B=8192 400→20' --precision f32
    profile gemm-f32-8192x400x20-v23 '^gemm_simt_shortk_f32$' 3 1 "${gemm[@]}" --all --shape 'dX=dY·W B=8192 400→20' --precision f32
    profile gemm-f32-128x400x784-v19 '^gemm_simt64_warp_db_splitk_fused_f32$' 3 1 "${gemm[@]}" --all --shape 'Y=XWᵀ B=128 784→400' --precision f32
    profile gemm-bf16-20x400x8192-v24 '^gemm_tc64_splitk_bf16$' 3 1 "${gemm[@]}" --all --shape 'dW=dYᵀX B=8192 400→20' --precision bf16
    # Whether ncu, too, sees no bank conflicts in TensorCore64 (the emulator's profile since 95bfc49;
    # 26.3% excess in A·Bᵀ before) on the bf16 training shape where it is the fastest `mma.sync` kernel.
    profile gemm-bf16-1024x400x784-tc64 '^gemm_tc64_bf16$' 3 1 "${gemm[@]}" --all --shape 'Y=XWᵀ B=1024 784→400' --precision bf16
    if [[ $wgmma_ok == 1 ]]; then
      # v33 (mma.sync fed by TMA, Hopper-only) beside v15's profile above.
      excluded TensorCore128x256TmaPersistent ||
        profile gemm-bf16-4096-v33 '^gemm_tma_mma256p_bf16$' 3 1 "$here/bin/bench_gemm" --samples 1 --all --shape 4096³ --precision bf16 ${exclude[@]+"${exclude[@]}"}
      profile gemm-bf16-4096-wgmma256p '^gemm_wgmma256p_bf16$' 3 1 "$here/bin/bench_gemm" --samples 1 --shape 4096³ --precision bf16
    fi
    # (The mining kernels met their targets on 2026-11-27; their profile steps, and the durations
    # of every kernel of a call, are in git history: scripts/gpu-run.sh at ebf4c9b.)
  else
    echo "profile: ncu not found (PATH, $CUDA_HOME/bin)"
  fi
  step_timeout=$step_timeout_saved
fi
}
phase_baselines() {

# BASELINES: groups of torch_baselines.py sections separated by spaces, one step (one process,
# one STEP_TIMEOUT) per group: the first writes baselines.json / torch_baselines.log, a later one
# baselines_<its first section>.json / torch_baselines_<its first section>.log. The metric
# sections need pytorch-metric-learning (the wheel gpu-check.sh puts in wheels/).
baseline_logs=()
if want baselines && [[ -f $here/torch_baselines.py ]] && python3 -c 'import torch' 2>/dev/null; then
  pylib=$here/pylib
  ls "$here"/wheels/*.whl >/dev/null 2>&1 && python3 -m pip install --quiet --no-deps --target "$pylib" "$here"/wheels/*.whl >/dev/null 2>&1
  for group in ${BASELINES:-ceil,gemm,latent,vae metric,metric_all,train_metric}; do
    suffix=$( ((${#baseline_logs[@]} == 0)) || echo "_${group%%,*}")
    PYTHONPATH=$pylib:${PYTHONPATH:-} run_step "torch_baselines$suffix" python3 "$here/torch_baselines.py" --out "$out/baselines$suffix.json" --only "$group"
    baseline_logs+=("torch_baselines$suffix")
  done
fi
}
phase_train() {

if want train; then
  # The trainers measure their layers' GEMM shapes into the shared tuning file; without the bench
  # phase in this call they keep the fixed rule (their figures then compare with earlier runs').
  train_tuning=()
  want bench && train_tuning=(--gemm-tuning-file "$out/gemm-tuning.txt")
# PyTorch's figures of this call (the baselines phase ran first), printed beside ours.
baselines=()
for f in "$out"/baselines*.json; do [[ -f $f ]] && baselines+=(--baselines "$f"); done
  [[ $gemm_ok == 1 && ${#train_tuning[@]} -gt 0 ]] && train_tuning+=(--gemm-tuning measure-all)
  train_tuning+=(${exclude[@]+"${exclude[@]}"})
  run_step "train_vae" "$here/bin/train_vae" --device cuda --data "$here/data/mnist-full" --epochs 10 --iwae-k 100 --out "$out/vae-gpu" "${train_tuning[@]}"
  # The metric-learning issue's run: triplet + semi-hard, 5 epochs, precision@1 per epoch.
  [[ -x $here/bin/train_siamese ]] &&
    run_step "train_siamese" "$here/bin/train_siamese" --device cuda --data "$here/data/mnist-full" --epochs 5 --out "$out/siamese-gpu" "${train_tuning[@]}"
fi
}

# Phases run in this order whatever order they were named in: the figures (baselines, bench,
# train) before the slow sanitizers, so that a call cut off by DEADLINE keeps them; the baselines
# first, so that the benches print PyTorch's figures of this call beside theirs.
phase_tests
# The wgmma test only when wgmma may run (wgmma_ok above, set by the tests phase).
skip_wgmma=()
[[ $wgmma_ok == 1 ]] || skip_wgmma=(--skip wgmma)
# What the later steps leave out: the versions that failed their own tests in this call, and the
# Hopper ones where wgmma may not run. The benches and trainers get them as --gemm-exclude; the
# sanitizer and racecheck steps run the gemm tests on every other version (LATENTKIT_TEST_VERSIONS),
# since the tests phase has shown where the failed ones fail.
if [[ $wgmma_ok != 1 ]]; then
  gemm_exclude+=($(awk -F'\t' '$2 == "hopper" { print $1 }' <<<"$versions"))
fi
exclude=()
if ((${#gemm_exclude[@]} > 0)); then
  exclude=(--gemm-exclude "$(IFS=,; echo "${gemm_exclude[*]}")")
  echo "GEMM versions left out of the benches and later tests: ${gemm_exclude[*]}"
  if [[ -n $versions ]]; then
    LATENTKIT_TEST_VERSIONS=$(awk -F'\t' -v gone=" ${gemm_exclude[*]} " 'index(gone, " " $1 " ") == 0 { printf "%s%s", sep, $1; sep = "," }' <<<"$versions")
    export LATENTKIT_TEST_VERSIONS
  fi
fi
# excluded NAME: whether version NAME is left out (the per-version racecheck steps pass it over).
excluded() { [[ " ${gemm_exclude[*]} " == *" $1 "* ]]; }
# (The sanitizer steps that went to the background are waited for before the profile phase, which
# times kernels, and at the end.)
for p in baselines bench train sanitize synccheck collect_steps profile racewgmma racegemm racemining collect_steps; do
  if [[ $p == collect_steps ]]; then collect_steps; else "phase_$p"; fi
done

echo
for log in bench_kernels bench_gemm_ceilings bench_gemm bench_gemm_all bench_vae bench_metric bench_metric_large train_vae train_siamese; do
  [[ -f $out/$log.log ]] || continue
  echo "== $log =="
  tail -n 40 "$out/$log.log"
done
for log in ${baseline_logs[@]+"${baseline_logs[@]}"}; do
  [[ -f $out/$log.log ]] && { echo "== $log =="; tail -n 40 "$out/$log.log"; }
done
echo
echo "| step                         | status    |    time   |"
echo "|------------------------------|-----------|-----------|"
printf '%s\n' "${table[@]}"
printf '%s\n' "${table[@]}" | grep -q FAIL && exit 1
exit 0
