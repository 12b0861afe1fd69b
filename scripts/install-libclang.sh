#!/usr/bin/env bash
# bindgen (build.rs) needs libclang to read kernels/latentkit_abi.h: installs Debian's libclang-dev
# when no libclang shared library is registered. Used by .ci/run and scripts/gpu-check.sh.
set -euo pipefail
if ! ldconfig -p | grep -q 'libclang[-.0-9]*\.so'; then
  export DEBIAN_FRONTEND=noninteractive
  sudo_=()
  [[ $(id -u) == 0 ]] || sudo_=(sudo)
  "${sudo_[@]}" apt-get update -qq
  "${sudo_[@]}" apt-get install -y -qq libclang-dev >/dev/null
fi
