//! CPU reference for `kernels/batch.cu`.

pub fn gather_rows(src: &[f32], index: &[u32], cursor: u32, out: &mut [f32], src_rows: usize, cols: usize) {
    let rows = out.len().checked_div(cols).unwrap_or(0);
    let base = cursor as usize * rows;
    for (r, dst) in out.chunks_exact_mut(cols.max(1)).enumerate().take(rows) {
        match index.get(base + r).map(|&i| i as usize).filter(|&i| i < src_rows) {
            Some(row) => dst.copy_from_slice(&src[row * cols..(row + 1) * cols]),
            None => dst.fill(f32::NAN),
        }
    }
}

/// out[r, c] = (accumulate ? out[r, c] : 0) + Σ_{t<terms} src[index[t·rows + r], c], summed in
/// the order t = 0, 1, … in f32 (the kernel's order); an index past src adds NaN.
pub fn gather_sum_rows(src: &[f32], index: &[u32], out: &mut [f32], src_rows: usize, cols: usize, accumulate: bool) {
    let rows = out.len().checked_div(cols).unwrap_or(0);
    let terms = index.len().checked_div(rows).unwrap_or(0);
    for (r, dst) in out.chunks_exact_mut(cols.max(1)).enumerate().take(rows) {
        if !accumulate {
            dst.fill(0.0);
        }
        for t in 0..terms {
            match Some(index[t * rows + r] as usize).filter(|&i| i < src_rows) {
                Some(row) => dst.iter_mut().zip(&src[row * cols..(row + 1) * cols]).for_each(|(d, &v)| *d += v),
                None => dst.iter_mut().for_each(|d| *d += f32::NAN),
            }
        }
    }
}

pub fn counter_add(counter: &mut [u32], value: u32) {
    counter[0] = counter[0].wrapping_add(value);
}
