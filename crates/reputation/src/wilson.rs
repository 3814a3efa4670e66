//! The Wilson score lower bound, evaluated in one exact order of IEEE-754 binary64 operations so
//! that an independent implementation gets the same bits (spec/reputation.md, "Wilson lower
//! bound"). Pure arithmetic; it never sees records.

/// The normal quantile for a two-sided 95% interval: the binary64 value nearest to 1.96.
pub const Z: f64 = 1.96;

/// The Wilson score lower bound of `successes` out of `n` votes at `z = 1.96`, in `[0, 1]`.
///
/// `0.0` when `n == 0` or `successes == 0`; `successes > n` is treated as `successes == n`.
/// Evaluation (binary64, round to nearest even, correctly rounded `sqrt`, no fused
/// multiply-add), with `S = successes as f64`, `N = n as f64`:
///
/// ```text
/// z2  = Z * Z
/// q   = ((4.0 * S) * (N - S)) / N
/// r   = sqrt(z2 + q)
/// num = (2.0 * S + z2) - Z * r
/// den = 2.0 * (N + z2)
/// lb  = num / den, then clamped to [0.0, 1.0]
/// ```
pub fn wilson_lower_bound(successes: u64, n: u64) -> f64 {
    let successes = successes.min(n);
    if n == 0 || successes == 0 {
        return 0.0;
    }
    let s = successes as f64;
    let n = n as f64;
    let z2 = Z * Z;
    let q = ((4.0 * s) * (n - s)) / n;
    let r = (z2 + q).sqrt();
    let num = (2.0 * s + z2) - Z * r;
    let den = 2.0 * (n + z2);
    let lb = num / den;
    if lb.is_nan() || lb <= 0.0 {
        0.0
    } else if lb > 1.0 {
        1.0
    } else {
        lb
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closed form of the textbook, evaluated differently: agrees to within rounding.
    fn textbook(s: u64, n: u64) -> f64 {
        let (s, n) = (s as f64, n as f64);
        let p = s / n;
        let z2 = Z * Z;
        (p + z2 / (2.0 * n) - Z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt()) / (1.0 + z2 / n)
    }

    #[test]
    fn empty_and_zero_successes_are_zero() {
        assert_eq!(wilson_lower_bound(0, 0).to_bits(), 0.0f64.to_bits());
        assert_eq!(wilson_lower_bound(0, 10).to_bits(), 0.0f64.to_bits());
        assert_eq!(wilson_lower_bound(5, 0).to_bits(), 0.0f64.to_bits());
    }

    #[test]
    fn matches_the_textbook_formula() {
        for n in 1..200u64 {
            for s in 1..=n {
                let a = wilson_lower_bound(s, n);
                let b = textbook(s, n);
                assert!((a - b).abs() < 1e-12, "s={s} n={n}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn known_values() {
        // 1 of 1 at 95%: 0.2065; 10 of 10: 0.7225; 50 of 100: 0.4038; 95 of 100: 0.8882.
        for (s, n, want) in [
            (1, 1, 0.2065),
            (10, 10, 0.7225),
            (50, 100, 0.4038),
            (95, 100, 0.8882),
        ] {
            let got = wilson_lower_bound(s, n);
            assert!((got - want).abs() < 5e-5, "s={s} n={n}: {got}");
        }
    }

    /// `(successes, n, bits of wilson_lower_bound(successes, n))`, as listed in
    /// spec/reputation.md ("Test values"); checked against an independent Python evaluation.
    const SPEC_TEST_VALUES: &[(u64, u64, u64)] = &[
        (0, 0, 0x0000_0000_0000_0000),
        (1, 1, 0x3fca_7002_b50b_5620),
        (1, 2, 0x3fb8_3307_a8e7_936e),
        (2, 3, 0x3fca_9470_048f_703f),
        (5, 10, 0x3fce_4891_5b93_836c),
        (9, 10, 0x3fe3_1126_a0ba_3000),
        (10, 10, 0x3fe7_1e64_147a_4622),
        (50, 100, 0x3fd9_d859_10bc_69f8),
        (95, 100, 0x3fec_6c87_247c_909e),
        (999, 1000, 0x3fef_d1c6_64ea_66f6),
        (1, 1_000_000, 0x3e87_b12e_a863_1ea7),
        (123_456, 1_234_567, 0x3fb9_76f6_79a7_7c6a),
    ];

    /// The bit patterns listed in spec/reputation.md ("Test values"): must not change.
    #[test]
    fn spec_test_values() {
        for (s, n, bits) in SPEC_TEST_VALUES {
            assert_eq!(
                wilson_lower_bound(*s, *n).to_bits(),
                *bits,
                "s={s} n={n}: {:#018x}",
                wilson_lower_bound(*s, *n).to_bits()
            );
        }
    }

    #[test]
    fn more_successes_than_votes_is_clamped() {
        assert_eq!(wilson_lower_bound(7, 5), wilson_lower_bound(5, 5));
    }
}
