//! `Fixed(x, digits)`: displays exactly as `format!("{x:.digits$}")`, faster.
//!
//! The check messages print about fifteen numbers with 1 to 4 decimals on every evaluation, and
//! the standard library's exact-precision formatting of such numbers often falls back from
//! Grisu to its bignum algorithm (Dragon4): that was a quarter of an evaluation. The decimal
//! is computed here exactly in 128-bit integers instead: `|x| * 10^digits` rounded to the
//! nearest integer, ties to even (the standard library's rule), then printed with the sign of
//! `x` (so `-0.001` prints `-0.00`, as `format!` does). Anything outside that fast path (NaN,
//! infinities, more than 9 decimals, magnitudes that do not fit) is formatted by `format!`'s
//! own code, so the text is always identical; tests compare the two on millions of values.

use std::fmt;

/// The most decimals of the fast path (10^9 keeps `mantissa * 10^digits` below 2^83).
const DIGITS_MAX: usize = 9;

const POW10: [u64; DIGITS_MAX + 1] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// Displays `.0` with `.1` decimals, exactly as `{:.N}` does. Meant for plain `{}` in a
/// format string: width, fill and sign flags of the outer format are ignored.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fixed(pub(crate) f64, pub(crate) usize);

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Fixed(x, digits) = *self;
        match scaled_rounded(x, digits) {
            Some(n) => {
                let mut buf = [0u8; 48];
                f.write_str(write_decimal(&mut buf, n, digits, x.is_sign_negative()))
            }
            None => write!(f, "{x:.digits$}"),
        }
    }
}

/// `round_half_even(|x| * 10^digits)`, or `None` outside the fast path.
fn scaled_rounded(x: f64, digits: usize) -> Option<u64> {
    if !x.is_finite() || digits > DIGITS_MAX {
        return None;
    }
    let bits = x.to_bits();
    let exponent_bits = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1u64 << 52) - 1);
    // |x| = mantissa * 2^exponent exactly.
    let (mantissa, exponent) = if exponent_bits == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1u64 << 52), exponent_bits - 1075)
    };
    let scaled = u128::from(mantissa) * u128::from(POW10[digits]);
    let n = if exponent >= 0 {
        // An integer: fast only while it fits in 64 bits.
        if exponent >= 64 {
            return None;
        }
        let n = scaled.checked_shl(exponent as u32)?;
        if n >> exponent != scaled {
            return None;
        }
        n
    } else {
        let shift = (-exponent) as u32;
        if shift >= 127 {
            // |x| * 10^digits < 2^83 * 2^-127: rounds to 0 (below one half).
            0
        } else {
            let quotient = scaled >> shift;
            let remainder = scaled & ((1u128 << shift) - 1);
            let half = 1u128 << (shift - 1);
            if remainder > half || (remainder == half && quotient & 1 == 1) {
                quotient + 1
            } else {
                quotient
            }
        }
    };
    u64::try_from(n).ok()
}

/// Writes `[-]integer.fraction` of `n / 10^digits` at the end of `buf`; returns the text.
fn write_decimal(buf: &mut [u8; 48], mut n: u64, digits: usize, negative: bool) -> &str {
    let mut at = buf.len();
    for _ in 0..digits {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
    }
    if digits > 0 {
        at -= 1;
        buf[at] = b'.';
    }
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if negative {
        at -= 1;
        buf[at] = b'-';
    }
    // Only ASCII digits, '.' and '-' were written.
    std::str::from_utf8(&buf[at..]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(x: f64, digits: usize) {
        let fast = Fixed(x, digits).to_string();
        let standard = format!("{x:.digits$}");
        assert_eq!(
            fast,
            standard,
            "x = {x:e} ({:#018x}), {digits} digits",
            x.to_bits()
        );
    }

    /// xorshift64*, deterministic.
    struct Bits(u64);
    impl Bits {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
    }

    #[test]
    fn matches_std_on_special_values() {
        let specials = [
            0.0,
            -0.0,
            0.5,
            1.5,
            2.5,
            -0.5,
            -2.5,
            0.25,
            0.125,
            0.375,
            1.125,
            -0.001,
            0.00005,
            0.00015,
            0.05,
            0.15,
            0.25,
            0.35,
            1.005,
            2.675,
            10574.0,
            3540.0,
            5886.943383309937,
            9.999_95,
            99.995,
            0.999_999_999_5,
            f64::MIN_POSITIVE,
            5e-324,
            -5e-324,
            1e-20,
            1e15,
            1e16,
            1.8e19,
            1.9e19,
            1e20,
            1e300,
            f64::MAX,
            f64::MIN,
            f64::EPSILON,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            u64::MAX as f64,
            (1u64 << 53) as f64,
        ];
        for x in specials {
            for digits in 0..=12 {
                check(x, digits);
                check(-x, digits);
            }
        }
    }

    #[test]
    fn matches_std_on_random_bit_patterns() {
        let mut bits = Bits(0x1234_5678_9abc_def1);
        for _ in 0..300_000 {
            let x = f64::from_bits(bits.next());
            check(x, (bits.next() % 11) as usize);
        }
    }

    #[test]
    fn matches_std_on_everyday_magnitudes_and_ties() {
        let mut bits = Bits(0x0fed_cba9_8765_4321);
        for _ in 0..300_000 {
            let r = bits.next();
            let digits = (r % 6) as usize;
            // Uniform in [-1e7, 1e7], in [-1, 1], and exact binary fractions k / 2^j
            // (which include the ties of every rounding position).
            let unit = (bits.next() >> 11) as f64 / (1u64 << 53) as f64;
            check((unit - 0.5) * 2e7, digits);
            check(unit - 0.5, digits);
            let k = (bits.next() % 1_000_000) as f64;
            let j = (bits.next() % 30) as i32;
            check(k / 2f64.powi(j), digits);
            check(-k / 2f64.powi(j), digits);
            // Near a rounding boundary: n + 1/2 at this precision, nudged by a few ulps.
            let boundary = ((bits.next() % 100_000) as f64 + 0.5) / POW10[digits] as f64;
            let mut y = boundary;
            for _ in 0..3 {
                y = f64::from_bits(y.to_bits() + 1);
                check(y, digits);
            }
            let mut y = boundary;
            for _ in 0..3 {
                y = f64::from_bits(y.to_bits() - 1);
                check(y, digits);
            }
            check(boundary, digits);
        }
    }
}
