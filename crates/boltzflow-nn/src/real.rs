//! The floating-point types the engine runs in: f32 for training and sampling, f64 for gradient
//! checks (DESIGN §5).

use std::fmt::Debug;
use std::iter::Sum;
use std::ops::{AddAssign, DivAssign, MulAssign, SubAssign};

/// A network scalar: `f32` (default) or `f64` (gradient checks, or when configured).
///
/// The slice functions are the engine's vectorised elementary functions: the f32 versions use
/// the branch-free polynomial in [`exp_f32`] so that LLVM evaluates 8 or 16 values per
/// instruction; the f64 versions favour accuracy (they exist for gradient checks).
pub trait Real:
    num_traits::Float
    + Default
    + Debug
    + Send
    + Sync
    + 'static
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
{
    /// The safetensors dtype name (`"F32"` or `"F64"`).
    const DTYPE: &'static str;
    /// Converts from f64 (rounding for f32).
    fn of(x: f64) -> Self;
    /// Converts to f64 (exact).
    fn as_f64(self) -> f64;
    /// Replaces each value by its exponential.
    fn exp_slice(xs: &mut [Self]);
    /// Replaces each value by its hyperbolic tangent.
    fn tanh_slice(xs: &mut [Self]);
    /// Little-endian bytes of a slice (for checkpoints).
    fn write_le(xs: &[Self], out: &mut Vec<u8>);
    /// Reads little-endian bytes (`bytes.len()` a multiple of the size); data may be unaligned.
    fn read_le(bytes: &[u8]) -> Vec<Self>;
}

impl Real for f32 {
    const DTYPE: &'static str = "F32";
    #[inline(always)]
    fn of(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        f64::from(self)
    }
    fn exp_slice(xs: &mut [Self]) {
        exp_f32_slice(xs);
    }
    fn tanh_slice(xs: &mut [Self]) {
        tanh_f32_slice(xs);
    }
    fn write_le(xs: &[Self], out: &mut Vec<u8>) {
        out.extend(xs.iter().flat_map(|v| v.to_le_bytes()));
    }
    fn read_le(bytes: &[u8]) -> Vec<Self> {
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }
}

impl Real for f64 {
    const DTYPE: &'static str = "F64";
    #[inline(always)]
    fn of(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self
    }
    fn exp_slice(xs: &mut [Self]) {
        boltzflow_core::math::exp_slice(xs);
    }
    fn tanh_slice(xs: &mut [Self]) {
        for v in xs {
            *v = v.tanh();
        }
    }
    fn write_le(xs: &[Self], out: &mut Vec<u8>) {
        out.extend(xs.iter().flat_map(|v| v.to_le_bytes()));
    }
    fn read_le(bytes: &[u8]) -> Vec<Self> {
        bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect()
    }
}

const LOG2E_F32: f32 = std::f32::consts::LOG2_E;
// ln 2 split (Cody–Waite) so that k·LN2_HI is exact for |k| < 2^9.
const LN2_HI_F32: f32 = 0.693_359_4;
const LN2_LO_F32: f32 = -2.121_944_4e-4;
// 1.5·2^23: adding it rounds to the nearest integer and leaves it in the low mantissa bits.
const ROUND_MAGIC_F32: f32 = 12_582_912.0;

/// e^x in f32, branch-free so that loops over slices vectorise. Relative error below 2e-7 on
/// [−87, 88]; below −87 the result is 0, above 88.7 it is +∞.
///
/// Written by hand for the reason given in `boltzflow_core::math`: the system library is
/// scalar, and exp/tanh dominated the step time of the frameworks measured in DECISIONS D1.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    let xc = x.clamp(-87.0, 88.0);
    let kf = xc * LOG2E_F32 + ROUND_MAGIC_F32;
    let k = kf - ROUND_MAGIC_F32;
    let r = (xc - k * LN2_HI_F32) - k * LN2_LO_F32;
    // Taylor series of e^r on |r| ≤ ln2/2 to degree 7 (truncation < 1e-8), Estrin's scheme.
    let r2 = r * r;
    let r4 = r2 * r2;
    let q0 = 1.0 + r;
    let q1 = 0.5 + r * (1.0 / 6.0);
    let q2 = 1.0 / 24.0 + r * (1.0 / 120.0);
    let q3 = 1.0 / 720.0 + r * (1.0 / 5_040.0);
    let p = (q0 + r2 * q1) + r4 * (q2 + r2 * q3);
    // 2^k from the integer in the low bits of `kf` (−126 ≤ k ≤ 127 after the clamp).
    let scale = f32::from_bits(kf.to_bits().wrapping_add(127) << 23);
    let y = p * scale;
    let y = if x < -87.0 { 0.0 } else { y };
    let y = if x > 88.72 { f32::INFINITY } else { y };
    if x.is_nan() { f32::NAN } else { y }
}

/// tanh x = 1 − 2/(e^{2x} + 1) with [`exp_f32`]; absolute error below 3e-7.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    1.0 - 2.0 / (exp_f32(2.0 * x.clamp(-20.0, 20.0)) + 1.0)
}

/// [`exp_f32`] over a slice, dispatched at run time to AVX-512 / AVX2.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512dq+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+sse4.1"
))]
pub fn exp_f32_slice(xs: &mut [f32]) {
    for v in xs.iter_mut() {
        *v = exp_f32(*v);
    }
}

/// [`tanh_f32`] over a slice, dispatched at run time to AVX-512 / AVX2.
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512bw+avx512dq+avx512vl+avx2+fma",
    "x86_64+avx2+fma",
    "x86_64+sse4.1"
))]
pub fn tanh_f32_slice(xs: &mut [f32]) {
    for v in xs.iter_mut() {
        *v = tanh_f32(*v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_f32_is_accurate() {
        let mut worst: f64 = 0.0;
        for i in 0..=200_000 {
            let x = -87.0 + 175.0 * f64::from(i) / 200_000.0;
            let got = f64::from(exp_f32(x as f32));
            let want = f64::from(x as f32).exp();
            worst = worst.max(((got - want) / want).abs());
        }
        assert!(worst < 2e-7, "worst relative error {worst}");
        assert_eq!(exp_f32(-100.0), 0.0);
        assert_eq!(exp_f32(100.0), f32::INFINITY);
        assert!(exp_f32(f32::NAN).is_nan());
    }

    #[test]
    fn tanh_f32_is_accurate() {
        let mut v: Vec<f32> = (0..=40_000).map(|i| -20.0 + i as f32 * 1e-3).collect();
        let want: Vec<f64> = v.iter().map(|&x| f64::from(x).tanh()).collect();
        tanh_f32_slice(&mut v);
        let worst = v
            .iter()
            .zip(&want)
            .map(|(&a, &b)| (f64::from(a) - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 3e-7, "worst absolute error {worst}");
    }
}
