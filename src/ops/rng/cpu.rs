//! CPU twin of `kernels/philox.cuh`: the same operations in the same order, each correctly rounded
//! and none fused, so every ε matches the GPU's bit for bit.
// The literals are spelled exactly as in philox.cuh (they round to the same f32 on both sides),
// which is easier to audit than named constants.
#![allow(clippy::excessive_precision, clippy::approx_constant)]

/// Philox4x32-10 on counter (c0..c3) with key (k0, k1).
pub fn philox4x32_10(mut c: [u32; 4], mut k0: u32, mut k1: u32) -> [u32; 4] {
    for round in 0..10 {
        if round > 0 {
            k0 = k0.wrapping_add(0x9E37_79B9);
            k1 = k1.wrapping_add(0xBB67_AE85);
        }
        let p0 = u64::from(0xD251_1F53u32) * u64::from(c[0]);
        let p1 = u64::from(0xCD9E_8D57u32) * u64::from(c[2]);
        let (hi0, lo0) = ((p0 >> 32) as u32, p0 as u32);
        let (hi1, lo1) = ((p1 >> 32) as u32, p1 as u32);
        c = [hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0];
    }
    c
}

/// ln(u) for u in (0, 1], as `ln_exact` in philox.cuh.
pub fn ln_exact(u: f32) -> f32 {
    let bits = u.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 127;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    if m > 1.414_213_56 {
        m *= 0.5;
        e += 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let z = s * s;
    let mut p = 0.090_909_093_6f32;
    p = p * z + 0.111_111_112;
    p = p * z + 0.142_857_149;
    p = p * z + 0.200_000_003;
    p = p * z + 0.333_333_343;
    p = p * z + 1.0;
    let ln_m = (2.0 * s) * p;
    (e as f32) * 0.693_147_182 + ln_m
}

/// (sin 2πv, cos 2πv) for v in [0, 1), as `sincos_2pi_exact` in philox.cuh.
pub fn sincos_2pi_exact(v: f32) -> (f32, f32) {
    let v4 = v * 4.0;
    let nf = (v4 + 0.5).floor();
    let n = (nf as i32) & 3;
    let a = (v4 - nf) * 1.570_796_37;
    let a2 = a * a;
    let mut sp = 2.755_731_88e-6f32;
    sp = sp * a2 - 1.984_127_01e-4;
    sp = sp * a2 + 8.333_333_77e-3;
    sp = sp * a2 - 0.166_666_672;
    sp = sp * a2 + 1.0;
    let sa = sp * a;
    let mut cp = 2.480_158_76e-5f32;
    cp = cp * a2 - 1.388_888_92e-3;
    cp = cp * a2 + 4.166_666_79e-2;
    cp = cp * a2 - 0.5;
    let ca = cp * a2 + 1.0;
    match n {
        0 => (sa, ca),
        1 => (ca, -sa),
        2 => (-sa, -ca),
        _ => (-ca, sa),
    }
}

/// The four standard normals of Philox block `block` (elements 4·block .. 4·block + 3) of the
/// stream (seed, offset).
pub fn philox_normal4(seed: u64, offset: u64, block: u64) -> [f32; 4] {
    let r = philox4x32_10(
        [block as u32, (block >> 32) as u32, offset as u32, (offset >> 32) as u32],
        seed as u32,
        (seed >> 32) as u32,
    );
    const TWO_POW_M24: f32 = 5.960_464_48e-8;
    let mut out = [0.0f32; 4];
    for pair in [0, 2] {
        let u = ((r[pair] >> 8) + 1) as f32 * TWO_POW_M24;
        let v = (r[pair + 1] >> 8) as f32 * TWO_POW_M24;
        let radius = (-2.0 * ln_exact(u)).sqrt();
        let (s, c) = sincos_2pi_exact(v);
        out[pair] = radius * c;
        out[pair + 1] = radius * s;
    }
    out
}

/// The standard normal for element `index` of the stream (seed, offset).
pub fn philox_normal(seed: u64, offset: u64, index: u64) -> f32 {
    philox_normal4(seed, offset, index >> 2)[(index & 3) as usize]
}

/// Sequential access to one stream that computes each Philox block once (the GPU computes it
/// per element; the values are the same).
pub struct NormalStream {
    seed: u64,
    offset: u64,
    block: u64,
    values: [f32; 4],
}

impl NormalStream {
    pub fn new(seed: u64, offset: u64) -> Self {
        Self { seed, offset, block: u64::MAX, values: [0.0; 4] }
    }

    /// ε for element `index`.
    pub fn get(&mut self, index: u64) -> f32 {
        if index >> 2 != self.block {
            self.block = index >> 2;
            self.values = philox_normal4(self.seed, self.offset, self.block);
        }
        self.values[(index & 3) as usize]
    }
}

/// out[i] = ε(seed, offset, i).
pub fn normal_fill(seed: u64, offset: u64, out: &mut [f32]) {
    let mut stream = NormalStream::new(seed, offset);
    for (i, o) in out.iter_mut().enumerate() {
        *o = stream.get(i as u64);
    }
}

pub(crate) fn load_offset(offset: &[u32]) -> u64 {
    u64::from(offset[0]) | (u64::from(offset[1]) << 32)
}

pub(crate) fn advance(offset: &mut [u32]) {
    let next = load_offset(offset).wrapping_add(1);
    offset[0] = next as u32;
    offset[1] = (next >> 32) as u32;
}
