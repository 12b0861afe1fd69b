//! Peak-throughput probes (`kernels/peak.cu`): one instruction issued as fast as the GPU allows,
//! with enough independent accumulators that latency is hidden and only the issue rate limits.
//! Their TFLOP/s is the ceiling that a GEMM built on the same instruction can be held against
//! (`examples/bench_gemm.rs --ceilings`).
//!
//! FLOP counting, per warp and iteration:
//! - [`PeakInstr::MmaBf16`]: 16 `mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32`, each
//!   2·16·8·16 = 4096 FLOP: 65,536.
//! - [`PeakInstr::Ffma`]: 32 threads × 16 FFMA × 2 FLOP: 1024.
//!
//! [`peak_reference`] is the CPU twin: what the kernel's output must be for a given input.

use crate::backend::{Backend, CudaBackend};
use crate::error::{Error, Result};

/// The instruction a probe issues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeakInstr {
    /// `mma.sync` m16n8k16, bf16 inputs, f32 accumulators (`peak_mma_bf16_f32`). Each warp runs
    /// `D[i][j] += A[i]·B[j]` for 4 A tiles (16×16) and 4 B tiles (16×8), from D = 0.
    /// Input: sets of the 4 A tiles (row-major `[m][k]`) then the 4 B tiles (row-major `[k][n]`),
    /// 1536 values, rounded to bf16 (nearest even) on upload. Output: per warp (global index w,
    /// using set w mod sets) its 16 D tiles, row-major `[m][n]`, tile i·4 + j, 2048 values.
    MmaBf16,
    /// FFMA f32 (`peak_ffma_f32`). Each thread runs 16 chains `acc[j] = fma(acc[j], m, c[j])`
    /// from `acc[j] = c[j]`. Input: sets of 17 values (m, c[0..16]). Output: thread t (global
    /// index, T threads, using set t mod sets) writes acc[j] to `out[j·T + t]`.
    Ffma,
}

/// Most warps a probe block may have (the kernels' `__launch_bounds__(512)`).
pub const MAX_WARPS_PER_BLOCK: usize = 16;

const A_TILES: usize = 4;
const B_TILES: usize = 4;
const CHAINS: usize = 16;

impl PeakInstr {
    /// Input values per set.
    pub const fn set_len(self) -> usize {
        match self {
            PeakInstr::MmaBf16 => A_TILES * 256 + B_TILES * 128,
            PeakInstr::Ffma => 1 + CHAINS,
        }
    }

    /// Output values per warp.
    pub const fn out_per_warp(self) -> usize {
        match self {
            PeakInstr::MmaBf16 => A_TILES * B_TILES * 128,
            PeakInstr::Ffma => 32 * CHAINS,
        }
    }

    /// FLOP per warp and iteration (module docs).
    pub const fn flop_per_warp_iter(self) -> u64 {
        match self {
            PeakInstr::MmaBf16 => (A_TILES * B_TILES) as u64 * 2 * 16 * 8 * 16,
            PeakInstr::Ffma => 32 * CHAINS as u64 * 2,
        }
    }

    #[cfg(feature = "cuda")]
    fn kernel(self) -> &'static str {
        match self {
            PeakInstr::MmaBf16 => "peak_mma_bf16_f32",
            PeakInstr::Ffma => "peak_ffma_f32",
        }
    }
}

/// A probe launch: `blocks` blocks of `warps_per_block` warps, each warp `iters` iterations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeakGrid {
    pub blocks: usize,
    pub warps_per_block: usize,
    pub iters: usize,
}

impl PeakGrid {
    /// Warps in the grid.
    pub fn warps(&self) -> usize {
        self.blocks.saturating_mul(self.warps_per_block)
    }

    /// FLOP one launch of `instr` does on this grid.
    pub fn flop(&self, instr: PeakInstr) -> f64 {
        self.warps() as f64 * self.iters as f64 * instr.flop_per_warp_iter() as f64
    }

    /// Checks the grid and the input; returns the number of input sets.
    fn check(&self, instr: PeakInstr, input_len: usize) -> Result<usize> {
        const OP: &str = "peak probe";
        if !(1..=MAX_WARPS_PER_BLOCK).contains(&self.warps_per_block) {
            return Err(Error::invalid(
                OP,
                format!("warps_per_block {} not in 1..={MAX_WARPS_PER_BLOCK}", self.warps_per_block),
            ));
        }
        if self.blocks == 0 || self.blocks > i32::MAX as usize {
            return Err(Error::invalid(OP, format!("blocks {} not in 1..=2^31-1", self.blocks)));
        }
        if self.iters == 0 || self.iters > i32::MAX as usize {
            return Err(Error::invalid(OP, format!("iters {} not in 1..=2^31-1", self.iters)));
        }
        if self.warps().checked_mul(instr.out_per_warp()).is_none_or(|n| n > i64::MAX as usize) {
            return Err(Error::invalid(OP, format!("{} warps: output too large", self.warps())));
        }
        let set = instr.set_len();
        if input_len == 0 || input_len % set != 0 {
            return Err(Error::shape(
                OP,
                format!("{instr:?} input of {input_len} values is not a whole number (≥ 1) of {set}-value sets"),
            ));
        }
        Ok(input_len / set)
    }
}

enum ProbeInput {
    Bf16(<CudaBackend as Backend>::Buf<half::bf16>),
    F32(<CudaBackend as Backend>::Buf<f32>),
}

/// One probe's device buffers, launched as often as a benchmark needs.
pub struct PeakProbe {
    be: CudaBackend,
    instr: PeakInstr,
    grid: PeakGrid,
    sets: usize,
    input: ProbeInput,
    output: <CudaBackend as Backend>::Buf<f32>,
}

impl PeakProbe {
    /// Uploads `input` (whole sets, [`PeakInstr::set_len`] values each) and a NaN-filled output
    /// (an element the kernel does not write stays NaN).
    pub fn new(be: &CudaBackend, instr: PeakInstr, grid: PeakGrid, input: &[f32]) -> Result<Self> {
        let sets = grid.check(instr, input.len())?;
        let input = match instr {
            PeakInstr::MmaBf16 => ProbeInput::Bf16(be.upload(&to_bf16(input))?),
            PeakInstr::Ffma => ProbeInput::F32(be.upload(input)?),
        };
        let n = grid.warps() * instr.out_per_warp();
        let mut output = be.zeros(n)?;
        // SAFETY: `output` holds n elements.
        unsafe { be.fill_f32(&mut output, f32::NAN, n)? };
        Ok(Self { be: be.clone(), instr, grid, sets, input, output })
    }

    /// Queues one launch on the backend's stream (no synchronisation).
    pub fn launch(&mut self) -> Result<()> {
        self.launch_kernel()
    }

    /// The output of the launches so far (waits for them).
    pub fn output(&self) -> Result<Vec<f32>> {
        self.be.download(&self.output)
    }

    /// FLOP per launch.
    pub fn flop(&self) -> f64 {
        self.grid.flop(self.instr)
    }

    #[cfg(feature = "cuda")]
    fn launch_kernel(&mut self) -> Result<()> {
        use crate::backend::cuda::launch;
        let cfg = cudarc::driver::LaunchConfig {
            grid_dim: (self.grid.blocks as u32, 1, 1),
            block_dim: (32 * self.grid.warps_per_block as u32, 1, 1),
            shared_mem_bytes: 0,
        };
        // (In range: PeakGrid::check.)
        let (sets, iters) = (self.sets as i64, self.grid.iters as i32);
        let be = &self.be;
        // The kernels read sets · set_len input values and write warps · out_per_warp outputs, the
        // buffers' lengths (PeakProbe::new).
        match &self.input {
            ProbeInput::Bf16(x) => launch!(be, self.instr.kernel(), cfg, [x, &sets, &iters, &mut self.output]),
            ProbeInput::F32(x) => launch!(be, self.instr.kernel(), cfg, [x, &sets, &iters, &mut self.output]),
        }
    }

    #[cfg(not(feature = "cuda"))]
    fn launch_kernel(&mut self) -> Result<()> {
        let _ = (&self.input, self.sets);
        Err(Error::CudaUnavailable("latentkit was built without the `cuda` feature".into()))
    }
}

/// The CPU twin: the output a launch of `instr` on `grid` must produce from `input` (same layout
/// and checks as [`PeakProbe::new`]).
/// - MmaBf16: each D element starts at 0 and, `iters` times, gets its tile's 16-term dot product
///   (of the bf16-rounded inputs, summed in f64) added in f32. Exact when every product, dot
///   product and partial sum is an f32 integer below 2^24 (e.g. inputs that are small integers);
///   otherwise the tensor cores' own accumulation order differs in the last bits.
/// - Ffma: the same `f32::mul_add` chains, bit for bit (FFMA is an IEEE fused multiply-add).
pub fn peak_reference(instr: PeakInstr, grid: PeakGrid, input: &[f32]) -> Result<Vec<f32>> {
    let sets = grid.check(instr, input.len())?;
    let per_set: Vec<Vec<f32>> = input.chunks(instr.set_len()).map(|s| set_output(instr, grid.iters, s)).collect();
    let warps = grid.warps();
    let n = warps * instr.out_per_warp();
    let mut out = Vec::new();
    out.try_reserve_exact(n)
        .map_err(|_| Error::invalid("peak_reference", format!("{n} output values do not fit in memory")))?;
    out.resize(n, 0.0f32);
    match instr {
        PeakInstr::MmaBf16 => {
            for (w, o) in out.chunks_mut(instr.out_per_warp()).enumerate() {
                o.copy_from_slice(&per_set[w % sets]);
            }
        }
        PeakInstr::Ffma => {
            let threads = 32 * warps;
            for t in 0..threads {
                for (j, &v) in per_set[t % sets].iter().enumerate() {
                    out[j * threads + t] = v;
                }
            }
        }
    }
    Ok(out)
}

/// One set's output: a warp's 16 tiles (MmaBf16) or a thread's 16 chains (Ffma).
fn set_output(instr: PeakInstr, iters: usize, set: &[f32]) -> Vec<f32> {
    match instr {
        PeakInstr::MmaBf16 => {
            let x: Vec<f64> = to_bf16(set).iter().map(|v| f64::from(v.to_f32())).collect();
            let (a, b) = x.split_at(A_TILES * 256);
            let mut out = Vec::with_capacity(instr.out_per_warp());
            for i in 0..A_TILES {
                for j in 0..B_TILES {
                    for r in 0..16 {
                        for c in 0..8 {
                            let dot: f64 = (0..16).map(|k| a[i * 256 + r * 16 + k] * b[j * 128 + k * 8 + c]).sum();
                            let mut acc = 0.0f32;
                            for _ in 0..iters {
                                acc = (f64::from(acc) + dot) as f32;
                            }
                            out.push(acc);
                        }
                    }
                }
            }
            out
        }
        PeakInstr::Ffma => {
            let (m, c) = (set[0], &set[1..]);
            c.iter()
                .map(|&cj| {
                    let mut acc = cj;
                    for _ in 0..iters {
                        acc = acc.mul_add(m, cj);
                    }
                    acc
                })
                .collect()
        }
    }
}

fn to_bf16(v: &[f32]) -> Vec<half::bf16> {
    v.iter().map(|&x| half::bf16::from_f32(x)).collect()
}
