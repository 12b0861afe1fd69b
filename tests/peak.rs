//! The peak-throughput probes (kernels/peak.cu) against their CPU twin, `peak_reference`: the mma
//! probe on small-integer inputs (every sum exact in f32, so the comparison is exact), the FFMA
//! probe bit for bit. The twin itself against a plain matrix product of the documented layout.

mod common;

use common::*;
use latentkit::bench::peak::{peak_reference, PeakGrid, PeakInstr, PeakProbe, MAX_WARPS_PER_BLOCK};
use latentkit::rng::LkRng;
use rand::Rng;

/// n random integers in ±[1, 4]: products ≤ 16, 16-term dot products ≤ 256, so `iters` ≤ 65,536
/// sums of them stay exact in f32.
fn small_ints(r: &mut LkRng, n: usize) -> Vec<f32> {
    (0..n).map(|_| r.random_range(1..=4) as f32 * if r.random::<bool>() { 1.0 } else { -1.0 }).collect()
}

/// FFMA sets: m near 1 (the chains neither vanish nor overflow), c in [−1, 1], none zero.
fn ffma_sets(r: &mut LkRng, sets: usize) -> Vec<f32> {
    let mut v = rand_vec(r, sets * PeakInstr::Ffma.set_len(), -1.0, 1.0);
    v.chunks_mut(PeakInstr::Ffma.set_len()).for_each(|s| s[0] = rand_vec(r, 1, 0.9, 1.1)[0]);
    v
}

/// Grids with more sets than warps and fewer, one warp a block and several, odd block counts.
const GRIDS: [(PeakGrid, usize); 3] = [
    (PeakGrid { blocks: 3, warps_per_block: 2, iters: 5 }, 4),
    (PeakGrid { blocks: 1, warps_per_block: 5, iters: 2 }, 7),
    (PeakGrid { blocks: 2, warps_per_block: 1, iters: 1 }, 1),
];

#[test]
fn mma_bf16_probe_matches_its_twin() {
    let Some(be) = cuda("mma_bf16_probe_matches_its_twin") else { return };
    let mut r = rng(71);
    for (grid, sets) in GRIDS {
        let input = small_ints(&mut r, sets * PeakInstr::MmaBf16.set_len());
        let want = peak_reference(PeakInstr::MmaBf16, grid, &input).unwrap();
        let mut probe = PeakProbe::new(&be, PeakInstr::MmaBf16, grid, &input).unwrap();
        probe.launch().unwrap();
        assert_close(&format!("mma {grid:?}, {sets} sets"), &probe.output().unwrap(), &want, 0.0, 0.0);
    }
}

#[test]
fn ffma_probe_matches_its_twin_bit_for_bit() {
    let Some(be) = cuda("ffma_probe_matches_its_twin_bit_for_bit") else { return };
    let mut r = rng(72);
    for (mut grid, sets) in GRIDS {
        grid.iters *= 7; // 7, 14, 35 links a chain
        let input = ffma_sets(&mut r, sets);
        let want = peak_reference(PeakInstr::Ffma, grid, &input).unwrap();
        let mut probe = PeakProbe::new(&be, PeakInstr::Ffma, grid, &input).unwrap();
        probe.launch().unwrap();
        // Twice: a launch starts from the input again (nothing carries over).
        probe.launch().unwrap();
        let got = probe.output().unwrap();
        assert_close(&format!("ffma {grid:?}"), &got, &want, 0.0, 0.0);
        assert!(got.iter().zip(&want).all(|(g, w)| g.to_bits() == w.to_bits()), "ffma {grid:?}: signed zeros differ");
    }
}

/// The twin's mma output after one iteration is each tile pair's matrix product (A row-major
/// [m][k], B row-major [k][n], D row-major [m][n], tile i·4 + j), and after n iterations n times it.
#[test]
fn mma_twin_is_iters_times_the_tile_products() {
    let mut r = rng(73);
    let sets = 3;
    let input = small_ints(&mut r, sets * PeakInstr::MmaBf16.set_len());
    let one = PeakGrid { blocks: 2, warps_per_block: 2, iters: 1 };
    let got = peak_reference(PeakInstr::MmaBf16, one, &input).unwrap();
    for w in 0..one.warps() {
        let set = &input[(w % sets) * 1536..][..1536];
        let (a, b) = set.split_at(1024);
        for (i, j) in (0..4).flat_map(|i| (0..4).map(move |j| (i, j))) {
            for (row, col) in (0..16).flat_map(|row| (0..8).map(move |col| (row, col))) {
                let want: f32 = (0..16).map(|k| a[i * 256 + row * 16 + k] * b[j * 128 + k * 8 + col]).sum();
                assert_eq!(got[w * 2048 + (i * 4 + j) * 128 + row * 8 + col], want, "warp {w} tile ({i}, {j})");
            }
        }
    }
    let many = PeakGrid { iters: 1000, ..one };
    let scaled: Vec<f32> = got.iter().map(|v| v * 1000.0).collect();
    assert_eq!(peak_reference(PeakInstr::MmaBf16, many, &input).unwrap(), scaled);
}

/// One FFMA link from acc = c is fma(c, m, c); thread t of T writes chain j to out[j·T + t].
#[test]
fn ffma_twin_layout() {
    let mut r = rng(74);
    let input = ffma_sets(&mut r, 2);
    let grid = PeakGrid { blocks: 1, warps_per_block: 1, iters: 1 };
    let got = peak_reference(PeakInstr::Ffma, grid, &input).unwrap();
    for t in 0..32 {
        let set = &input[(t % 2) * 17..][..17];
        for j in 0..16 {
            assert_eq!(got[j * 32 + t], set[1 + j].mul_add(set[0], set[1 + j]), "thread {t} chain {j}");
        }
    }
}

#[test]
fn probes_reject_bad_grids_and_inputs() {
    let ok = PeakGrid { blocks: 1, warps_per_block: 1, iters: 1 };
    for instr in [PeakInstr::MmaBf16, PeakInstr::Ffma] {
        let set = vec![1.0f32; instr.set_len()];
        assert!(peak_reference(instr, ok, &set).is_ok());
        let bad_grids = [
            PeakGrid { blocks: 0, ..ok },
            PeakGrid { warps_per_block: 0, ..ok },
            PeakGrid { warps_per_block: MAX_WARPS_PER_BLOCK + 1, ..ok },
            PeakGrid { iters: 0, ..ok },
            PeakGrid { iters: i32::MAX as usize + 1, ..ok },
        ];
        for grid in bad_grids {
            let err = peak_reference(instr, grid, &set).unwrap_err();
            assert!(err.to_string().contains("invalid argument"), "{grid:?}: {err}");
        }
        for len in [0, instr.set_len() - 1, instr.set_len() + 1] {
            let err = peak_reference(instr, ok, &vec![1.0; len]).unwrap_err();
            assert!(err.to_string().contains("sets"), "{len} values: {err}");
        }
    }
    assert_eq!(PeakInstr::MmaBf16.flop_per_warp_iter(), 16 * 2 * 16 * 8 * 16);
    assert_eq!(
        PeakGrid { blocks: 3, warps_per_block: 2, iters: 10 }.flop(PeakInstr::Ffma),
        6.0 * 10.0 * 32.0 * 16.0 * 2.0
    );
}

/// A bad grid is an error on CUDA too, before anything is uploaded or launched.
#[test]
fn cuda_probe_rejects_a_bad_grid() {
    let Some(be) = cuda("cuda_probe_rejects_a_bad_grid") else { return };
    let grid = PeakGrid { blocks: 1, warps_per_block: MAX_WARPS_PER_BLOCK + 1, iters: 1 };
    assert!(PeakProbe::new(&be, PeakInstr::Ffma, grid, &[1.0; 17]).is_err());
}
