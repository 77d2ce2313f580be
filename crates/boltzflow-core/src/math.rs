//! Vectorisable elementary functions for the hot loops.
//!
//! Written by hand because the system maths library evaluates `exp` one value at a time
//! (DECISIONS D1 measured scalar transcendental functions as the largest cost in small models)
//! and no maintained crate offers a branch-free f64 `exp` that LLVM vectorises inside our own
//! loops. The functions here are `#[inline(always)]` and free of branches, so a loop over a slice
//! compiled for AVX2 + FMA (see [`exp_slice`], dispatched at run time with `multiversion`)
//! evaluates four values per instruction.
//!
//! Accuracy: [`exp`] is within 2 ulp of the correctly rounded result on [−708.39, 709.78]
//! (tested against the system library below); results below e^−708.39 flush to 0 rather than
//! becoming subnormal.

const LOG2E: f64 = std::f64::consts::LOG2_E;
// ln 2 split so that k·LN2_HI is exact for |k| < 2^11 (Cody–Waite).
const LN2_HI: f64 = 0.693_147_180_369_123_8;
const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
// 1.5·2^52: adding it rounds to the nearest integer and leaves the integer in the low mantissa bits.
const ROUND_MAGIC: f64 = 6_755_399_441_055_744.0;
const EXP_MIN: f64 = -708.39;
const EXP_MAX: f64 = 709.78;

/// e^x, branch-free and vectorisable (see the module doc for accuracy).
#[inline(always)]
pub fn exp(x: f64) -> f64 {
    let xc = x.clamp(EXP_MIN, EXP_MAX);
    let kf = xc.mul_add(LOG2E, ROUND_MAGIC);
    let k = kf - ROUND_MAGIC;
    let r = (-k).mul_add(LN2_LO, (-k).mul_add(LN2_HI, xc));
    // Taylor series of e^r on |r| ≤ ln2/2 to degree 13 (truncation error < 5e-18 relative),
    // evaluated with Estrin's scheme: dependency depth 5 instead of Horner's 13, which measured
    // ~2× faster here because the loop was latency-bound. `mul_add` is one FMA instruction in the
    // AVX2 + FMA builds of the callers (and a correctly rounded library call without FMA, so
    // every build gives the same bits).
    let r2 = r * r;
    let r4 = r2 * r2;
    let r8 = r4 * r4;
    let q0 = 1.0 + r;
    let q1 = r.mul_add(1.0 / 6.0, 0.5);
    let q2 = r.mul_add(1.0 / 120.0, 1.0 / 24.0);
    let q3 = r.mul_add(1.0 / 5_040.0, 1.0 / 720.0);
    let q4 = r.mul_add(1.0 / 362_880.0, 1.0 / 40_320.0);
    let q5 = r.mul_add(1.0 / 39_916_800.0, 1.0 / 3_628_800.0);
    let q6 = r.mul_add(1.0 / 6_227_020_800.0, 1.0 / 479_001_600.0);
    let s0 = r2.mul_add(q1, q0);
    let s1 = r2.mul_add(q3, q2);
    let s2 = r2.mul_add(q5, q4);
    let t0 = r4.mul_add(s1, s0);
    let t1 = r4.mul_add(q6, s2);
    let p = r8.mul_add(t1, t0);
    // 2^k from the integer left in the low bits of `kf` (valid for −1022 ≤ k ≤ 1023).
    let scale = f64::from_bits(kf.to_bits().wrapping_add(1023) << 52);
    let y = p * scale;
    let y = if x < EXP_MIN { 0.0 } else { y };
    // NaN needs no select of its own: the clamp keeps it, so r, p and y are NaN. (Never return
    // `x` itself here: that lets LLVM turn the store in `exp_slice` into a masked store, which
    // is microcoded and ~5× slower on AMD Zen.)
    if x > EXP_MAX { f64::INFINITY } else { y }
}

/// Bound on the relative error of [`exp_coarse`] with respect to [`exp`] (checked by the tests
/// with a margin: the measured worst case is below 1.7·10⁻⁷).
pub const EXP_COARSE_REL_ERROR: f64 = 2.5e-7;

/// e^x to a relative error below [`EXP_COARSE_REL_ERROR`], about half the work of [`exp`]:
/// the same range reduction and limits (0 below −708.39, +∞ above 709.78, NaN kept), with
/// Taylor's series to degree 6 (truncation ≤ e^{|r|} |r|⁷/7! ≤ 1.7·10⁻⁷ on |r| ≤ ln2/2).
///
/// For decisions that only need to know which side of a threshold e^x lies on, with an exact
/// [`exp`] for the rare values within the error bound (the Metropolis acceptance test).
#[inline(always)]
pub fn exp_coarse(x: f64) -> f64 {
    let xc = x.clamp(EXP_MIN, EXP_MAX);
    let kf = xc.mul_add(LOG2E, ROUND_MAGIC);
    let k = kf - ROUND_MAGIC;
    // One-word ln 2: the reduction error |k|·2.3·10⁻¹⁷ ≤ 2.4·10⁻¹⁴ is far inside the bound.
    let r = (-k).mul_add(std::f64::consts::LN_2, xc);
    let r2 = r * r;
    let q0 = 1.0 + r;
    let q1 = r.mul_add(1.0 / 6.0, 0.5);
    let q2 = r.mul_add(1.0 / 120.0, 1.0 / 24.0);
    let s0 = r2.mul_add(q1, q0);
    let s1 = r2.mul_add(1.0 / 720.0, q2);
    let p = (r2 * r2).mul_add(s1, s0);
    let scale = f64::from_bits(kf.to_bits().wrapping_add(1023) << 52);
    let y = p * scale;
    let y = if x < EXP_MIN { 0.0 } else { y };
    if x > EXP_MAX { f64::INFINITY } else { y }
}

/// Replaces every value of `xs` by its exponential, four at a time where the CPU has AVX2.
#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.1"))]
pub fn exp_slice(xs: &mut [f64]) {
    for v in xs.iter_mut() {
        *v = exp(*v);
    }
}

/// Natural logarithm in f32 for x in (0, 1] (used by [`normal_pair`]; other inputs are not
/// meaningful). Branch-free: x = m·2^e with m in [√½, √2), ln m = 2 atanh(s), s = (m−1)/(m+1),
/// by its series to s⁹ (truncation < 3·10⁻⁹ relative). Within 4 ulp of f32 `ln`.
#[inline(always)]
fn ln_unit_f32(x: f32) -> f32 {
    let bits = x.to_bits();
    // m in [1, 2) and its exponent; then fold m > √2 into [√½, 1) with e + 1.
    let e = ((bits >> 23) as i32 - 127) as f32;
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let big = m > std::f32::consts::SQRT_2;
    let m = if big { 0.5 * m } else { m };
    let e = if big { e + 1.0 } else { e };
    let s = (m - 1.0) / (m + 1.0);
    let z = s * s;
    let p = z.mul_add(1.0 / 9.0, 1.0 / 7.0);
    let p = z.mul_add(p, 1.0 / 5.0);
    let p = z.mul_add(p, 1.0 / 3.0);
    let p = z.mul_add(p, 1.0);
    e.mul_add(std::f32::consts::LN_2, 2.0 * s * p)
}

/// (sin θ, cos θ) in f32 for |θ| ≤ π/4, by their Taylor series to θ⁹ and θ¹⁰ (truncation
/// < 2·10⁻⁹).
#[inline(always)]
fn sin_cos_quarter_f32(t: f32) -> (f32, f32) {
    let t2 = t * t;
    let s = t2.mul_add(1.0 / 362_880.0, -1.0 / 5_040.0);
    let s = t2.mul_add(s, 1.0 / 120.0);
    let s = t2.mul_add(s, -1.0 / 6.0);
    let s = (t * t2).mul_add(s, t);
    let c = t2.mul_add(-1.0 / 3_628_800.0, 1.0 / 40_320.0);
    let c = t2.mul_add(c, -1.0 / 720.0);
    let c = t2.mul_add(c, 1.0 / 24.0);
    let c = t2.mul_add(c, -0.5);
    let c = t2.mul_add(c, 1.0);
    (s, c)
}

/// Two standard normal variates from 64 random bits, `a` and `b` (Box–Muller in f32, vectorisable: written
/// for loops over many chains, eight values per AVX2 instruction).
///
/// `a` gives the radius √(−2 ln u), u = (k + 1)/2²⁴ in (0, 1] (so the tail stops at
/// 5.8σ); `b` gives the angle: two bits pick the quadrant q and 23 bits an offset
/// θ in [−π/4, π/4), φ = qπ/2 + θ. Quadrants q and q + 2 give exactly negated pairs, so the
/// distribution of the pair is *exactly* symmetric under ξ → −ξ whatever the rounding of ln,
/// sin and cos. That is what a random-walk Metropolis proposal needs for detailed balance; the
/// shape is Gaussian to f32 precision (see the tests).
#[inline(always)]
pub fn normal_pair(a: u32, b: u32) -> (f32, f32) {
    // Casts through i32: the values fit, and AVX2 converts signed integers only.
    let u = ((a >> 8) as i32 as f32 + 1.0) * (1.0 / 16_777_216.0);
    let r = (-2.0 * ln_unit_f32(u)).sqrt();
    let t = ((b & 0x3fff_ffff) >> 7) as i32 as f32 * (1.0 / 8_388_608.0) - 0.5;
    let (s, c) = sin_cos_quarter_f32(t * std::f32::consts::FRAC_PI_2);
    let odd = b & 0x4000_0000 != 0;
    let half = b & 0x8000_0000 != 0;
    // Rotation by qπ/2: q = 1 maps (c, s) to (−s, c); q = 2 negates both.
    let (x, y) = if odd { (-s, c) } else { (c, s) };
    let (x, y) = if half { (-x, -y) } else { (x, y) };
    (r * x, r * y)
}

/// A uniform variate in [0, 1) with 52 random bits, from 64 (vectorisable: no integer-to-float
/// conversion).
#[inline(always)]
pub fn unit_f64(w: u64) -> f64 {
    f64::from_bits((w >> 12) | 0x3ff0_0000_0000_0000) - 1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulp_distance(a: f64, b: f64) -> u64 {
        (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs()
    }

    #[test]
    fn exp_is_within_two_ulp_of_the_system_library() {
        let mut worst = 0;
        let n = 200_000;
        for i in 0..=n {
            let x = -708.0 + 1417.0 * i as f64 / n as f64;
            worst = worst.max(ulp_distance(exp(x), x.exp()));
        }
        for i in 0..=n {
            let x = -1.0 + 2.0 * i as f64 / n as f64;
            worst = worst.max(ulp_distance(exp(x), x.exp()));
        }
        assert!(worst <= 2, "worst ulp distance {worst}");
    }

    #[test]
    fn exp_coarse_is_within_its_bound_of_exp() {
        let mut worst = 0.0f64;
        let n = 400_000;
        for i in 0..=n {
            let x = -708.0 + 1417.0 * f64::from(i) / f64::from(n);
            worst = worst.max((exp_coarse(x) / exp(x) - 1.0).abs());
        }
        for i in 0..=n {
            // Dense near 0, where Metropolis acceptance probabilities live.
            let x = -20.0 + 20.5 * f64::from(i) / f64::from(n);
            worst = worst.max((exp_coarse(x) / exp(x) - 1.0).abs());
        }
        assert!(
            worst < 0.8 * EXP_COARSE_REL_ERROR,
            "worst relative error {worst}"
        );
        for x in [f64::NEG_INFINITY, -1000.0, 1000.0, f64::INFINITY, 0.0] {
            assert_eq!(exp_coarse(x), exp(x), "{x}");
        }
        assert!(exp_coarse(f64::NAN).is_nan());
    }

    #[test]
    fn exp_special_values() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f64::NEG_INFINITY), 0.0);
        assert_eq!(exp(-1000.0), 0.0);
        assert_eq!(exp(f64::INFINITY), f64::INFINITY);
        assert_eq!(exp(1000.0), f64::INFINITY);
        assert!(exp(f64::NAN).is_nan());
    }

    #[test]
    fn exp_slice_matches_scalar() {
        let mut v: Vec<f64> = (0..37).map(|i| -20.0 + i as f64 * 1.1).collect();
        let expect: Vec<f64> = v.iter().map(|&x| exp(x)).collect();
        exp_slice(&mut v);
        assert_eq!(v, expect);
    }

    #[test]
    fn ln_and_sin_cos_are_accurate_in_f32() {
        let mut worst = 0.0f64;
        for k in 1..=100_000u32 {
            let x = k as f32 / 100_000.0;
            let err = (f64::from(ln_unit_f32(x)) - f64::from(x).ln()).abs();
            worst = worst.max(err / f64::from(x).ln().abs().max(1e-7));
        }
        assert!(worst < 1e-6, "ln worst relative error {worst}");
        for k in -1000..=1000 {
            let t = k as f32 * std::f32::consts::FRAC_PI_4 / 1000.0;
            let (s, c) = sin_cos_quarter_f32(t);
            assert!((f64::from(s) - f64::from(t).sin()).abs() < 3e-7);
            assert!((f64::from(c) - f64::from(t).cos()).abs() < 3e-7);
        }
    }

    /// xorshift64*: an independent source of test words.
    fn words(n: usize) -> impl Iterator<Item = u64> {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        (0..n).map(move |_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            s.wrapping_mul(0x2545_f491_4f6c_dd1d)
        })
    }

    #[test]
    fn normal_pairs_have_the_normal_distribution() {
        // Binned counts against exact N(0, 1) probabilities (χ² over 40 bins on [−4, 4] plus the
        // tails), moments against 0, 1, 0, 3 within 5 standard errors, and no correlation.
        let n = 1_000_000;
        let edges: Vec<f64> = (0..=40).map(|i| -4.0 + 0.2 * f64::from(i)).collect();
        let mut counts = vec![0u64; 42];
        let (mut m1, mut m2, mut m3, mut m4, mut cross) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for w in words(n / 2) {
            let (x, y) = normal_pair(w as u32, (w >> 32) as u32);
            cross += f64::from(x) * f64::from(y);
            for v in [f64::from(x), f64::from(y)] {
                let bin = edges.partition_point(|&e| e <= v);
                counts[bin] += 1;
                m1 += v;
                m2 += v * v;
                m3 += v * v * v;
                m4 += v * v * v * v;
            }
        }
        let nf = n as f64;
        let cdf = |x: f64| 0.5 * (1.0 + libm::erf(x / std::f64::consts::SQRT_2));
        let mut chi2 = 0.0;
        for (bin, &c) in counts.iter().enumerate() {
            let lo = if bin == 0 {
                f64::NEG_INFINITY
            } else {
                edges[bin - 1]
            };
            let hi = if bin == 41 { f64::INFINITY } else { edges[bin] };
            let expect = nf * (cdf(hi) - cdf(lo));
            chi2 += (c as f64 - expect).powi(2) / expect;
        }
        // 41 degrees of freedom: the 0.999 quantile is 74.7.
        assert!(chi2 < 74.7, "χ² = {chi2}");
        let se = |var: f64| (var / nf).sqrt();
        assert!((m1 / nf).abs() < 5.0 * se(1.0));
        assert!((m2 / nf - 1.0).abs() < 5.0 * se(2.0));
        assert!((m3 / nf).abs() < 5.0 * se(15.0));
        assert!((m4 / nf - 3.0).abs() < 5.0 * se(96.0));
        assert!((cross / (nf / 2.0)).abs() < 5.0 * se(2.0));
    }

    #[test]
    fn normal_pairs_are_exactly_symmetric() {
        // Flipping the quadrant's high bit (q → q + 2) negates the pair bit for bit.
        for w in words(10_000) {
            let (a, b) = (w as u32, (w >> 32) as u32);
            let (x, y) = normal_pair(a, b);
            let (xn, yn) = normal_pair(a, b ^ (1 << 31));
            assert_eq!(
                (x.to_bits() ^ xn.to_bits(), y.to_bits() ^ yn.to_bits()),
                (1 << 31, 1 << 31)
            );
        }
        assert_eq!(unit_f64(0), 0.0);
        assert!(unit_f64(u64::MAX) < 1.0);
    }
}
