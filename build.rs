//! Build script: with feature `cuda`, compiles every `kernels/*.cu` with nvcc into a fatbin (SASS for
//! each target architecture plus PTX for the newest), embeds them, and generates the Rust side of the
//! kernel ABI (`kernels/latentkit_abi.h`) with bindgen. Without `cuda` it does nothing: the crate
//! then needs no CUDA toolkit, no GPU and no libclang.
//!
//! Environment:
//! - `NVCC`, then `CUDA_HOME` / `CUDA_PATH` (`bin/nvcc`), then `PATH`, then the project-local
//!   `.cuda-toolchain/cuda` of `scripts/install-cuda-toolchain.sh`, then `/usr/local/cuda`.
//! - `LATENTKIT_CUDA_ARCHS`: comma-separated SM list, default `80,86,89,90`; SASS is built for each
//!   and PTX for the newest, so newer GPUs can JIT it. A source with a `// latentkit-arch: sm_90a`
//!   line (Hopper's wgmma and TMA) is built for that architecture alone, when the list has 90.

use std::env;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let kernel_dir = manifest.join("kernels");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={}", kernel_dir.display());
    for var in ["NVCC", "CUDA_HOME", "CUDA_PATH", "PATH", "LATENTKIT_CUDA_ARCHS", "LIBCLANG_PATH", "CXX", "HOST_CXX"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    #[cfg(feature = "cuda")]
    cuda::build(&manifest, &kernel_dir);
    #[cfg(not(feature = "cuda"))]
    let _ = (manifest, kernel_dir);
}

#[cfg(feature = "cuda")]
mod cuda {
    use super::*;
    use std::fmt::Write as _;
    use std::path::Path;
    use std::process::{Command, Stdio};

    const DEFAULT_ARCHS: &str = "80,86,89,90";

    /// Stops the build with a message cargo shows in full.
    fn fail(msg: &str) -> ! {
        eprintln!("\nlatentkit build error:\n{msg}\n");
        std::process::exit(1);
    }

    fn find_nvcc(manifest: &Path) -> Option<PathBuf> {
        if let Some(p) = env::var_os("NVCC") {
            return Some(PathBuf::from(p));
        }
        for var in ["CUDA_HOME", "CUDA_PATH"] {
            if let Some(home) = env::var_os(var) {
                let p = Path::new(&home).join("bin/nvcc");
                if p.is_file() {
                    return Some(p);
                }
            }
        }
        if let Some(path) = env::var_os("PATH") {
            for dir in env::split_paths(&path) {
                let p = dir.join("nvcc");
                if p.is_file() {
                    return Some(p);
                }
            }
        }
        [manifest.join(".cuda-toolchain/cuda/bin/nvcc"), PathBuf::from("/usr/local/cuda/bin/nvcc")]
            .into_iter()
            .find(|p| p.is_file())
    }

    /// SM numbers from `LATENTKIT_CUDA_ARCHS` (e.g. "80,86,89,90" or "90a").
    fn cuda_archs() -> Vec<String> {
        let raw = env::var("LATENTKIT_CUDA_ARCHS").unwrap_or_else(|_| DEFAULT_ARCHS.to_string());
        let archs: Vec<String> = raw
            .split([',', ';', ' '])
            .map(|s| s.trim().trim_start_matches("sm_").to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let valid = |s: &String| {
            let digits = s.trim_end_matches(['a', 'f']);
            !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
        };
        if archs.is_empty() || !archs.iter().all(valid) {
            fail(&format!("LATENTKIT_CUDA_ARCHS={raw:?} is not a list of SM numbers like \"80,86,89,90\""));
        }
        archs
    }

    /// Names of the `LK_KERNEL void name(` entry points of one source, in order.
    fn kernel_names(src: &str) -> Vec<String> {
        src.lines()
            .filter_map(|l| l.trim_start().strip_prefix("LK_KERNEL void "))
            .map(|rest| {
                // `LK_KERNEL void __launch_bounds__(256) name(`: the name follows the attributes
                // (`__launch_bounds__(..)`, `__cluster_dims__(..)`, in any order).
                let mut rest = rest.trim_start();
                while let Some(after) =
                    ["__launch_bounds__(", "__cluster_dims__("].iter().find_map(|a| rest.strip_prefix(a))
                {
                    rest = after.split_once(')').map_or("", |(_, tail)| tail).trim_start();
                }
                let name = rest.split('(').next().unwrap_or("").trim();
                let ident = !name.is_empty()
                    && !name.starts_with(|c: char| c.is_ascii_digit())
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !ident {
                    fail(&format!("can't read the kernel name in `LK_KERNEL void {rest}`"));
                }
                name.to_string()
            })
            .collect()
    }

    /// The architecture of a `// latentkit-arch: sm_90a` line, if the source has one.
    fn arch_marker(src: &str) -> Option<String> {
        let line = src.lines().find_map(|l| l.trim().strip_prefix("// latentkit-arch:"))?;
        let arch = line.trim().trim_start_matches("sm_").to_string();
        let digits = arch.trim_end_matches(['a', 'f']);
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            fail(&format!("`// latentkit-arch:{line}` does not name an SM like sm_90a"));
        }
        Some(arch)
    }

    /// The `.entry` names of each `*.ptx` file nvcc kept in `dir` (one file per architecture).
    fn ptx_entries(dir: &Path) -> Vec<(PathBuf, std::collections::HashSet<String>)> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", dir.display())))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "ptx"))
            .collect();
        files.sort();
        if files.is_empty() {
            fail(&format!("nvcc kept no PTX in {}", dir.display()));
        }
        files
            .into_iter()
            .map(|p| {
                let text =
                    std::fs::read_to_string(&p).unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", p.display())));
                let entries = text
                    .lines()
                    .filter_map(|l| l.split_once(".entry ").map(|(_, rest)| rest))
                    .map(|rest| rest.split(|c: char| c == '(' || c.is_whitespace()).next().unwrap_or("").to_string())
                    .collect();
                (p, entries)
            })
            .collect()
    }

    pub fn build(manifest: &Path, kernel_dir: &Path) {
        let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
        let nvcc = find_nvcc(manifest).unwrap_or_else(|| {
            fail(
                "feature `cuda` needs nvcc (CUDA 13.0), and none was found through NVCC, CUDA_HOME, \
                 CUDA_PATH, PATH, .cuda-toolchain/cuda or /usr/local/cuda.\n\
                 Install one into the project with:  scripts/install-cuda-toolchain.sh\n\
                 (it prints the CUDA_HOME to export), or point NVCC at an existing nvcc.",
            )
        });
        let archs = cuda_archs();
        // cc does the host compiler detection (CXX, target, cross setups); nvcc uses it via -ccbin.
        let host_cxx = cc::Build::new().cpp(true).cargo_metadata(false).get_compiler();

        let mut sources: Vec<PathBuf> = std::fs::read_dir(kernel_dir)
            .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", kernel_dir.display())))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| matches!(p.extension().and_then(|x| x.to_str()), Some("cu" | "cuh" | "h")))
            .collect();
        sources.sort();
        for s in &sources {
            println!("cargo:rerun-if-changed={}", s.display());
        }
        let cu: Vec<&PathBuf> = sources.iter().filter(|p| p.extension().is_some_and(|x| x == "cu")).collect();

        // Launch all nvcc processes, then wait: the files compile in parallel.
        let mut jobs = Vec::new();
        for src in &cu {
            let stem = src.file_stem().and_then(|s| s.to_str()).expect("utf-8 kernel file name").to_string();
            let out = out_dir.join(format!("{stem}.fatbin"));
            let text =
                std::fs::read_to_string(src).unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", src.display())));
            // A source marked `// latentkit-arch: sm_90a` uses features of that one architecture
            // (wgmma, TMA): it is built for it alone, when the arch list has its SM number, and the
            // backend loads it only on GPUs of that compute capability.
            let only_arch = arch_marker(&text);
            if let Some(a) = &only_arch {
                let digits = a.trim_end_matches(['a', 'f']);
                if !archs.iter().any(|x| x.trim_end_matches(['a', 'f']) == digits) {
                    continue;
                }
            }
            let mut cmd = Command::new(&nvcc);
            cmd.arg("-fatbin")
                .args(["-std=c++17", "-O3", "-lineinfo", "--Werror", "all-warnings"])
                .arg("-ccbin")
                .arg(host_cxx.path())
                .arg("-I")
                .arg(kernel_dir);
            let number = |a: &String| a.trim_end_matches(['a', 'f']).parse::<u32>().unwrap_or(0);
            let newest = archs.iter().max_by_key(|a| number(a)).expect("archs is non-empty");
            if let Some(a) = &only_arch {
                cmd.arg(format!("-gencode=arch=compute_{a},code=sm_{a}"));
            } else {
                for a in &archs {
                    if a == newest {
                        cmd.arg(format!("-gencode=arch=compute_{a},code=[sm_{a},compute_{a}]"));
                    } else {
                        cmd.arg(format!("-gencode=arch=compute_{a},code=sm_{a}"));
                    }
                }
            }
            // nvcc keeps each architecture's PTX here: the kernel-name check reads it, since the
            // fatbin itself may be compressed (nvcc compresses a large one).
            let keep = out_dir.join(format!("nvcc-keep-{stem}"));
            let _ = std::fs::remove_dir_all(&keep);
            std::fs::create_dir_all(&keep).unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", keep.display())));
            cmd.arg("-keep").arg("--keep-dir").arg(&keep);
            cmd.arg("-o").arg(&out).arg(src.as_path());
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            let shown = format!("{cmd:?}");
            let child =
                cmd.spawn().unwrap_or_else(|e| fail(&format!("cannot run {}: {e}\ncommand: {shown}", nvcc.display())));
            jobs.push((stem, src.to_path_buf(), text, only_arch, out, keep, shown, child));
        }

        let mut table = String::from(
            "// Generated by build.rs: one entry per kernels/*.cu.\n\
             pub(crate) static KERNEL_MODULES: &[KernelModule] = &[\n",
        );
        let mut seen = std::collections::HashSet::new();
        for (stem, src, text, only_arch, out, keep, shown, child) in jobs {
            let res = child
                .wait_with_output()
                .unwrap_or_else(|e| fail(&format!("nvcc did not finish: {e}\ncommand: {shown}")));
            if !res.status.success() {
                fail(&format!(
                    "nvcc failed on {} ({})\ncommand: {shown}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    src.display(),
                    res.status,
                    String::from_utf8_lossy(&res.stdout),
                    String::from_utf8_lossy(&res.stderr)
                ));
            }
            // What nvcc says on success (ptxas performance notes such as C7515, "wgmma serialized")
            // would otherwise be lost: cargo shows it as warnings.
            for line in String::from_utf8_lossy(&res.stderr).lines().filter(|l| !l.trim().is_empty()) {
                println!("cargo:warning=nvcc {stem}.cu: {line}");
            }
            let names = kernel_names(&text);
            // Each entry point must be an entry of every architecture's PTX (a name the parser
            // misread would only fail at run time, on a GPU), every extern "C" entry must be one
            // the parser read, and each name must appear in one source only.
            for (ptx, entries) in ptx_entries(&keep) {
                if let Some(name) = names.iter().find(|n| !entries.contains(n.as_str())) {
                    fail(&format!("kernel `{name}` of {} is not an entry of {}", src.display(), ptx.display()));
                }
                if let Some(extra) = entries.iter().find(|e| !e.starts_with("_Z") && !names.contains(e)) {
                    fail(&format!(
                        "{} has an entry `{extra}` that build.rs did not read as an `LK_KERNEL void name(` line of {}",
                        ptx.display(),
                        src.display()
                    ));
                }
            }
            let _ = std::fs::remove_dir_all(&keep);
            for name in &names {
                if !seen.insert(name.clone()) {
                    fail(&format!("kernel `{name}` is defined in two kernels/*.cu sources"));
                }
            }
            let _ = writeln!(
                table,
                "    KernelModule {{ name: {stem:?}, fatbin: include_bytes!({:?}), functions: &{names:?}, only_arch: {only_arch:?} }},",
                out.display().to_string()
            );
        }
        table.push_str("];\n");
        let _ = writeln!(table, "pub(crate) const CUDA_ARCHS: &str = {:?};", archs.join(","));
        std::fs::write(out_dir.join("kernels.rs"), table)
            .unwrap_or_else(|e| fail(&format!("cannot write kernels.rs: {e}")));

        let header = kernel_dir.join("latentkit_abi.h");
        // bindgen panics (instead of returning an error) when libclang can't be loaded: turn that
        // into the same kind of message as every other build failure.
        let generated = std::panic::catch_unwind(|| {
            bindgen::Builder::default()
                .header(header.to_string_lossy())
                .allowlist_type("lk_.*")
                .allowlist_var("LK_.*")
                .prepend_enum_name(false)
                .derive_default(true)
                .derive_copy(true)
                .derive_debug(true)
                .generate()
                .map_err(|e| e.to_string())
        })
        .unwrap_or_else(|panic| {
            let msg =
                panic.downcast_ref::<String>().cloned().or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()));
            Err(msg.unwrap_or_else(|| "bindgen panicked".into()))
        });
        let bindings = generated.unwrap_or_else(|e| {
            fail(&format!(
                "bindgen could not process {}: {e}\nbindgen needs libclang: on Debian/Ubuntu \
                 `apt-get install libclang-dev` (or set LIBCLANG_PATH).",
                header.display()
            ))
        });
        bindings.write_to_file(out_dir.join("abi.rs")).unwrap_or_else(|e| fail(&format!("cannot write abi.rs: {e}")));
    }
}
