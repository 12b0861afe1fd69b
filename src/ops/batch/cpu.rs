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

pub fn counter_add(counter: &mut [u32], value: u32) {
    counter[0] = counter[0].wrapping_add(value);
}
