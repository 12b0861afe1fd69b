#!/usr/bin/env python3
"""Builds the CUDA emulator: a libcuda.so.1 that runs latentkit's kernels on the CPU.

Usage: tools/cuda-emu/build.py [--racecheck] [OUT_DIR]
       (default OUT_DIR: target/cuda-emu, with --racecheck target/cuda-emu-race)

--racecheck builds the race checker in (racecheck.cpp): the kernels are compiled with g++'s
-fsanitize=thread instrumentation, whose hooks (every load and store) racecheck.cpp serves in place
of ThreadSanitizer's runtime, checking each shared-memory access against the order the kernel's
barriers give. The same kernels, 1.5 to 4 times slower. The same hooks feed the shared-memory bank
profile (banks.cpp, on with LK_EMU_BANKS=1 at run time), whose wavefront counts banks_test.cpp
checks right after the link.

Each kernels/*.cu is compiled by the host C++ compiler ($CXX, default g++) against cuda_emu.h, after
four mechanical rewrites of a copy of it:
  - `extern __shared__ T name[];` becomes a macro for the launch's dynamic shared memory;
  - each function-scope `__shared__` declaration gets a call that fills it with NaN bytes once per
    block (so a read of shared memory nobody wrote shows up as NaN, as garbage would on a GPU);
  - every `LK_KERNEL` gets a registrar (with its `__cluster_dims__`), so the fake driver finds it by name;
  - member functions of a `struct` lose `__device__` (`static` here, for free functions).
gemm_tc.cu's inline PTX (ldmatrix, mma.sync, cp.async) comes from the emulator's tc_ptx_emu.cuh,
gemm_wgmma.cu's (mbarriers, TMA, wgmma, clusters) from wgmma_ptx_emu.cuh and hopper.cpp. A kernel
whose PTX has no model here (timing.cu: the global timer) is not compiled: its module still loads,
and launching one of its kernels fails with CUDA_ERROR_NOT_FOUND.
"""
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SKIP = {"timing.cu"}

EXTERN_SHARED = re.compile(r"^(\s*)extern __shared__ (?:__align__\(\d+\)\s+)?(.+?)\s+(\w+)\[\];")
SHARED = re.compile(r"^(\s*)__shared__ (.*);")
KERNEL = re.compile(
    r"\bLK_KERNEL\s+void\s+((?:(?:__cluster_dims__|__launch_bounds__)\([^)]*\)\s+)*)(\w+)\s*\(")
CLUSTER = re.compile(r"__cluster_dims__\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\)")


def shared_names(decl: str) -> list[str]:
    """The variable names of one `__shared__` declaration (possibly a comma-separated list)."""
    decl = re.sub(r"//.*", "", decl)
    parts, depth, cur = [], 0, ""
    for ch in decl:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    names = []
    for p in parts:
        head = p.split("[", 1)[0].split("=", 1)[0]
        ids = re.findall(r"[A-Za-z_]\w*", head)
        if ids:
            names.append(ids[-1])
    return names


STRUCT_OPEN = re.compile(r"^(\s*)struct\b[^;]*\{\s*$")


def rewrite(text: str) -> tuple[str, list[tuple[str, str, str, str]]]:
    out = []
    struct_indent = None  # inside a struct body: its member functions lose `__device__` (static here)
    for line in text.splitlines():
        if struct_indent is None:
            m = STRUCT_OPEN.match(line)
            if m:
                struct_indent = m.group(1)
        elif line.startswith(struct_indent + "};"):
            struct_indent = None
        else:
            line = line.replace("__device__ ", "")
        m = EXTERN_SHARED.match(line)
        if m:
            indent, ty, name = m.groups()
            out.append(f"#define {name} (reinterpret_cast<{ty}*>(lk_emu_dynamic_smem()))")
            continue
        m = SHARED.match(line)
        if m and "(" not in m.group(2).split("[", 1)[0].replace("__align__(", "").replace("alignas(", ""):
            indent, decl = m.groups()
            poison = " ".join(f"lk_emu_poison_shared(&{n}, sizeof {n});" for n in shared_names(decl))
            # `static alignas(8) T x` is ill-formed for g++: the alignment goes first.
            a = re.match(r"(alignas\(\d+\))\s+(.*)", decl)
            if a:
                line = f"{indent}{a.group(1)} __shared__ {a.group(2)};"
            out.append(f"{line} {poison}")
            continue
        out.append(line)
    kernels = []
    for attrs, name in KERNEL.findall(text):
        c = CLUSTER.search(attrs)
        kernels.append((*(c.groups() if c else ("1", "1", "1")), name))
    return "\n".join(out) + "\n", kernels


def main() -> int:
    args = sys.argv[1:]
    racecheck = "--racecheck" in args
    args = [a for a in args if a != "--racecheck"]
    out_dir = Path(args[0]) if args else REPO / "target" / ("cuda-emu-race" if racecheck else "cuda-emu")
    src_dir = out_dir / "src"
    obj_dir = out_dir / "obj"
    shutil.rmtree(src_dir, ignore_errors=True)
    src_dir.mkdir(parents=True)
    obj_dir.mkdir(parents=True, exist_ok=True)
    cuda_home = os.environ.get("CUDA_HOME") or str(REPO / ".cuda-toolchain" / "cuda")
    if not (Path(cuda_home) / "include" / "cuda.h").exists():
        print(f"cuda-emu: cuda.h not found under {cuda_home}/include (run scripts/install-cuda-toolchain.sh)",
              file=sys.stderr)
        return 1
    cxx = os.environ.get("CXX", "g++")

    units = []
    for f in sorted((REPO / "kernels").iterdir()):
        if f.suffix == ".cuh" or f.suffix == ".h":
            text, _ = rewrite(f.read_text())
            (src_dir / f.name).write_text(text)
    # The emulator's headers take precedence over the kernels' own (tc_ptx.cuh).
    for f in HERE.glob("*.cuh"):
        shutil.copy(f, src_dir / f.name)
    for f in sorted((REPO / "kernels").glob("*.cu")):
        if f.name in SKIP:
            continue
        text, kernels = rewrite(f.read_text())
        text += "".join(f"LK_EMU_REGISTER({k}, {x}, {y}, {z})\n" for x, y, z, k in kernels)
        dst = src_dir / (f.stem + ".cpp")
        dst.write_text(text)
        units.append(dst)
    emulator = ["timing_emu.cpp", "runtime.cpp", "hopper.cpp", "driver.cpp", "racecheck.cpp", "banks.cpp"]
    units += [HERE / f for f in emulator]

    flags = ["-std=c++17", "-O2", "-g1", "-fPIC", "-ffp-contract=off", "-fno-strict-aliasing",
             "-w", f"-I{src_dir}", f"-I{HERE}", f"-I{cuda_home}/include"]
    if racecheck:
        flags.append("-DLK_EMU_RACECHECK=1")

    def compile_one(src: Path) -> tuple[Path, str]:
        obj = obj_dir / (src.stem + ".o")
        kernel = src.parent != HERE
        inc = ["-include", str(HERE / "cuda_emu.h")] if kernel else []
        if kernel and racecheck:  # every load and store calls racecheck.cpp's __tsan_* hooks
            # -fno-tree-sra keeps a float4 load one 16-byte access (the bank profile's widths).
            inc += ["-fsanitize=thread", "--param", "tsan-instrument-func-entry-exit=0", "-fno-tree-sra"]
        cmd = [cxx, *flags, *inc, "-c", str(src), "-o", str(obj)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        return obj, (r.stderr if r.returncode else "")

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = list(pool.map(compile_one, units))
    failed = [(o, e) for o, e in results if e]
    for o, e in failed:
        print(f"cuda-emu: compiling {o.stem} failed:\n{e}", file=sys.stderr)
    if failed:
        return 1
    lib = out_dir / "libcuda.so.1"
    cmd = [cxx, "-shared", "-Wl,-soname,libcuda.so.1", "-o", str(lib), *[str(o) for o, _ in results], "-lpthread", "-ldl"]
    subprocess.run(cmd, check=True)
    link = out_dir / "libcuda.so"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to("libcuda.so.1")
    print(f"cuda-emu: built {lib} ({len(units) - len(emulator)} kernel sources"
          f"{', race checker on' if racecheck else ''})")
    if racecheck:  # the bank profile's wavefront counts on known requests (banks_test.cpp)
        test = out_dir / "banks_test"
        subprocess.run([cxx, *flags, str(HERE / "banks_test.cpp"), "-o", str(test), str(lib),
                        f"-Wl,-rpath,{out_dir.resolve()}"], check=True)
        if subprocess.run([str(test)]).returncode:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
