#!/usr/bin/env bash
# Runs the test suite's CUDA halves on the CPU: builds the CUDA emulator (tools/cuda-emu, a libcuda.so.1
# that runs kernels/*.cu compiled for the host, one fiber per CUDA thread) and runs
# `cargo test --release --features cuda` against it with LATENTKIT_REQUIRE_CUDA=1, so every
# CPU-vs-CUDA parity test runs its CUDA half. The emulated GPU is an sm_80 (the Hopper-only wgmma
# kernels do not load on it and their test skips, as on an A100), or with LK_EMU_SM=90 an sm_90 that
# runs them: `LK_EMU_SM=90 scripts/emu-test.sh --test gemm -- wgmma`. With LK_EMU_RACECHECK=1 the
# emulator is the race-checking build (target/cuda-emu-race: every shared-memory access checked
# against the kernel's barriers; see tools/cuda-emu/README.md), and a race fails the launch.
#
# Usage: scripts/emu-test.sh [cargo test arguments, e.g. --test gemm -- some_filter]
#        scripts/emu-test.sh --ci
#
# --ci is CI's step (.ci/run): about 5 minutes on 2 cores instead of the whole suite's 14.
#   - The dev profile, which CI's `cargo build --features cuda --all-targets` has already built: a
#     release build costs 5-7 more minutes of compiling, and the emulated kernels (g++ -O2 either
#     way) run about as fast in dev test binaries.
#   - Every test of every test binary but the slow ones in CI_SKIP; the gemm tests again on an
#     emulated sm_90, and its Hopper test a third time (TMA copies landing early, threads in
#     reverse). Every kernel that the whole suite launches is still launched, so each
#     kernels/*.cu but timing.cu (a no-op here) runs under at least one parity test.
#   - One process per test, EMU_JOBS (default nproc) at a time, slowest first: the emulator runs one
#     launch at a time per process, so more processes are what use more cores.
#   It prints one line per test, the output of those that fail, and fails if any does.
#   With LK_EMU_RACECHECK=1: the same on the race-checking build, less the tests in RACE_SKIP and
#   the sm_90 re-runs but the Hopper test (once: the checker does not depend on the thread order).
set -euo pipefail
cd "$(dirname "$0")/.."

# Tests --ci leaves out (exact names; the whole suite still runs them), with their emulated time:
# three end-to-end training runs on the MNIST subset and the measured-GEMM-choice test, whose
# kernels other tests run. Training with graph capture and replay stays in
# (deep_vae_trains_on_the_mnist_subset, and resident_vae_training_measures_before_its_capture,
# which also measures GEMM choices).
CI_SKIP=(
  bce_head_training_improves_retrieval_and_pairs_on_the_mnist_subset # metric, ~100 s
  triplet_training_improves_retrieval_on_the_mnist_subset           # metric, ~70 s
  vae_trains_on_the_mnist_subset                                    # vae, ~70 s
  measured_auto_matches_reference_and_keeps_its_choice              # gemm_tuning, ~110 s
)
# Tests --ci leaves out on the race-checking build as well: training runs and finite-difference
# checks, whose kernels the parity tests run on smaller inputs (the checker makes them 3-10x
# slower), and two gemm tests of kernels that every_gemm_kernel_version_matches_reference and
# bf16/f16_matches_reference run too (608 s and 299 s on it; both passed it on 2026-11-29), and
# the 1.1 M-row Auto test (8594 blocks of v16, whose loop the version tests race-check).
RACE_SKIP=(
  auto_takes_outputs_taller_than_the_fixed_rules_grid
  deep_vae_trains_on_the_mnist_subset
  resident_vae_training_measures_before_its_capture
  autoencoder_loss_falls_on_mnist_subset
  triplet_bwd_matches_finite_differences
  contrastive_training_improves_retrieval_and_pairs_on_the_mnist_subset
  wide_tile_versions_match_reference_in_every_epilogue
  tc2_interior_and_edge_tiles_match_reference
)
# Tests --ci starts first (the slowest it runs, 30-120 s each), so that the last to start are short;
# the others follow in the order their binaries list them.
CI_FIRST=(
  triplet_large_shapes_cover_every_gpu_path
  deep_vae_trains_on_the_mnist_subset
  resident_vae_training_measures_before_its_capture
  triplet_bwd_matches_finite_differences
  autoencoder_loss_falls_on_mnist_subset
  triplet_rows_in_ragged_chunks
)

ci=0
if [[ ${1:-} == --ci ]]; then
  ci=1
  shift
  if (($#)); then
    echo "emu-test.sh: --ci takes no other arguments" >&2
    exit 2
  fi
fi

bash scripts/install-cuda-toolchain.sh >/dev/null
export CUDA_HOME=$PWD/.cuda-toolchain/cuda
if ! command -v "${CXX:-g++}" >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq g++ >/dev/null
fi
emu=target/cuda-emu
if [[ ${LK_EMU_RACECHECK:-0} == 1 ]]; then
  emu=target/cuda-emu-race
  python3 tools/cuda-emu/build.py --racecheck "$emu"
else
  python3 tools/cuda-emu/build.py "$emu"
fi

export LD_LIBRARY_PATH=$PWD/$emu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LATENTKIT_REQUIRE_CUDA=1
if ((!ci)); then
  exec cargo test --release --features cuda "$@"
fi

# --ci: the dev profile's test binaries (name, path), built here if CI has not built them yet.
logs=$emu/ci-logs
rm -rf "$logs"
mkdir -p "$logs"
cargo test --features cuda --tests --no-run --message-format=json-render-diagnostics >"$logs/artifacts.json"
mapfile -t bins < <(python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["target"]["name"], m["executable"], sep="\t")
' <"$logs/artifacts.json")

# Their tests, as "binary<TAB>path<TAB>test[<TAB>env]", CI_FIRST's first. The gemm tests once more
# on an emulated sm_90 (LK_EMU_SM=90: 132 SMs, so the H100 launch choices; gemm_wgmma.cu's kernels
# load only there), with TMA copies landing as late as a GPU could land them (a read before the wait
# sees the old bytes); and the Hopper test a third time with them landing as early, the threads run
# highest first (a stage refilled while a wgmma still has to read it, a consumer running ahead of
# its turn, show up). The two Hopper runs first: the slowest.
first=() rest=() hopper=() sm90=()
for entry in "${bins[@]}"; do
  listed=$("${entry#*$'\t'}" --list --format terse)
  while IFS= read -r line; do
    [[ $line == *": test" ]] || continue
    t=${line%: test}
    [[ " ${CI_SKIP[*]} " == *" $t "* ]] && continue
    [[ $emu == *race && " ${RACE_SKIP[*]} " == *" $t "* ]] && continue
    if [[ " ${CI_FIRST[*]} " == *" $t "* ]]; then
      first+=("$entry"$'\t'"$t")
    else
      rest+=("$entry"$'\t'"$t")
    fi
    [[ ${entry%%$'\t'*} == gemm ]] || continue
    if [[ $t == wgmma_matches_reference_on_hopper ]]; then
      for env in "LK_EMU_SM=90" "LK_EMU_SM=90 LK_EMU_TMA=early LK_EMU_SCHEDULE=reverse"; do
        hopper+=("$entry"$'\t'"$t"$'\t'"$env")
        # The race checker does not depend on the order: the Hopper test once, no sm_90 re-runs.
        [[ $emu == *race ]] && break
      done
    elif [[ $emu != *race ]]; then
      sm90+=("$entry"$'\t'"$t"$'\t'"LK_EMU_SM=90")
    fi
  done <<<"$listed"
done
ordered=(${hopper[@]+"${hopper[@]}"})
for t in "${CI_FIRST[@]}"; do
  for task in "${first[@]}"; do [[ ${task##*$'\t'} == "$t" ]] && ordered+=("$task"); done
done
ordered+=("${rest[@]}" ${sm90[@]+"${sm90[@]}"})
if ((${#ordered[@]} == 0)); then
  echo "emu-test.sh --ci: no tests listed" >&2
  exit 1
fi

run_one() { # binary path test [env]: runs one test in its own process; its status goes to $logs
  local log=$logs/$1.$3${4:+.${4// /.}} start=$SECONDS rc=0
  # shellcheck disable=SC2086 # $4: assignments, one word each
  env $4 "$2" --exact "$3" >"$log.log" 2>&1 || rc=$?
  echo "$rc" >"$log.rc"
  printf '%-6s %s::%s%s (%d s)\n' "$( ((rc)) && echo FAILED || echo ok)" "$1" "$3" "${4:+ [$4]}" $((SECONDS - start))
}

lanes=${EMU_JOBS:-$(nproc)}
start=$SECONDS
for task in "${ordered[@]}"; do
  while (($(jobs -rp | wc -l) >= lanes)); do wait -n || true; done
  IFS=$'\t' read -r name path t envs <<<"$task"
  run_one "$name" "$path" "$t" "$envs" &
done
wait
failed=()
for task in "${ordered[@]}"; do
  IFS=$'\t' read -r name path t envs <<<"$task"
  log=$logs/$name.$t${envs:+.${envs// /.}}
  [[ $(cat "$log.rc" 2>/dev/null) == 0 ]] && continue
  failed+=("$name::$t${envs:+ [$envs]}")
  printf '\n---- %s::%s%s ----\n' "$name" "$t" "${envs:+ [$envs]}"
  cat "$log.log" 2>/dev/null || echo "(no log)"
done
echo
if ((${#failed[@]})); then
  echo "emu-test.sh --ci: ${#failed[@]} of ${#ordered[@]} tests FAILED under the emulator: ${failed[*]}" >&2
  exit 1
fi
echo "emu-test.sh --ci: ${#ordered[@]} tests passed under the emulator ($emu) in $((SECONDS - start)) s" \
  "(left out: ${CI_SKIP[*]}$([[ $emu == *race ]] && echo " ${RACE_SKIP[*]}"))"
