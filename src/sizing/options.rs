//! Option pricing: the normal distribution, Black-Scholes-Merton (with theta) and Black-76.

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OptionKind {
    Call,
    Put,
}

/// Standard normal density.
pub fn normal_pdf(x: f64) -> f64 {
    // 1 / sqrt(2 pi)
    const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;
    INV_SQRT_2PI * (-0.5 * x * x).exp()
}

/// Standard normal CDF through `erfc`, accurate to a few ulps in both tails (a 1e-7
/// approximation would move the theta press and the quote check at their boundaries).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x * std::f64::consts::FRAC_1_SQRT_2)
}

// The complementary error function below uses the rational approximations published with
// FreeBSD's msun `s_erf.c`:
//   Copyright (C) 1993 by Sun Microsystems, Inc. All rights reserved.
//   Developed at SunPro, a Sun Microsystems, Inc. business. Permission to use, copy, modify,
//   and distribute this software is freely granted, provided that this notice is preserved.
// Error bounds stated there: below 2^-57 on every interval, i.e. < 1 ulp of erfc.

// The digits are kept exactly as published so that they can be compared with the source;
// the compiler rounds each to the same f64 the source intended.
#[allow(clippy::excessive_precision)]
mod erf_coefficients {
    pub(super) const ERX: f64 = 8.450_629_115_104_675_292_97e-01;
    // erf on [0, 0.84375]
    pub(super) const PP: [f64; 5] = [
        1.283_791_670_955_125_585_61e-01,
        -3.250_421_072_470_014_993_70e-01,
        -2.848_174_957_559_851_047_66e-02,
        -5.770_270_296_489_441_591_57e-03,
        -2.376_301_665_665_016_260_84e-05,
    ];
    pub(super) const QQ: [f64; 5] = [
        3.979_172_239_591_553_528_19e-01,
        6.502_224_998_876_729_444_85e-02,
        5.081_306_281_875_765_627_76e-03,
        1.324_947_380_043_216_445_26e-04,
        -3.960_228_278_775_368_123_20e-06,
    ];
    // erf on [0.84375, 1.25]
    pub(super) const PA: [f64; 7] = [
        -2.362_118_560_752_659_440_77e-03,
        4.148_561_186_837_483_316_66e-01,
        -3.722_078_760_357_013_238_47e-01,
        3.183_466_199_011_617_536_74e-01,
        -1.108_946_942_823_966_774_76e-01,
        3.547_830_432_561_823_593_71e-02,
        -2.166_375_594_868_790_843_00e-03,
    ];
    pub(super) const QA: [f64; 6] = [
        1.064_208_804_008_442_282_86e-01,
        5.403_979_177_021_710_489_37e-01,
        7.182_865_441_419_626_628_68e-02,
        1.261_712_198_087_616_421_12e-01,
        1.363_708_391_202_905_073_62e-02,
        1.198_449_984_679_910_741_70e-02,
    ];
    // erfc on [1.25, 1/0.35]
    pub(super) const RA: [f64; 8] = [
        -9.864_944_034_847_148_227_05e-03,
        -6.938_585_727_071_817_643_72e-01,
        -1.055_862_622_532_329_098_14e+01,
        -6.237_533_245_032_600_603_96e+01,
        -1.623_966_694_625_734_703_55e+02,
        -1.846_050_929_067_110_359_94e+02,
        -8.128_743_550_630_659_342_46e+01,
        -9.814_329_344_169_145_485_92e+00,
    ];
    pub(super) const SA: [f64; 8] = [
        1.965_127_166_743_925_712_92e+01,
        1.376_577_541_435_190_426_00e+02,
        4.345_658_774_752_292_288_21e+02,
        6.453_872_717_332_678_803_36e+02,
        4.290_081_400_275_678_333_86e+02,
        1.086_350_055_417_794_351_34e+02,
        6.570_249_770_319_281_701_35e+00,
        -6.042_441_521_485_809_874_38e-02,
    ];
    // erfc on [1/0.35, 28]
    pub(super) const RB: [f64; 7] = [
        -9.864_942_924_700_099_285_97e-03,
        -7.992_832_376_805_230_065_74e-01,
        -1.775_795_491_775_475_198_89e+01,
        -1.606_363_848_558_219_160_62e+02,
        -6.375_664_433_683_896_277_22e+02,
        -1.025_095_131_611_077_249_54e+03,
        -4.835_191_916_086_513_970_19e+02,
    ];
    pub(super) const SB: [f64; 7] = [
        3.033_806_074_348_245_829_24e+01,
        3.257_925_129_965_739_188_26e+02,
        1.536_729_586_084_436_959_94e+03,
        3.199_858_219_508_595_539_08e+03,
        2.553_050_406_433_164_425_83e+03,
        4.745_285_412_069_553_672_15e+02,
        -2.244_095_244_658_581_833_62e+01,
    ];
}
use erf_coefficients::*;

/// Polynomial `c[0] + c[1] z + ...` by Horner's rule.
fn poly(c: &[f64], z: f64) -> f64 {
    c.iter().rev().fold(0.0, |acc, &k| acc * z + k)
}

/// `1 + z * poly(c, z)`: the denominators, whose constant term is 1.
fn poly1(c: &[f64], z: f64) -> f64 {
    1.0 + z * poly(c, z)
}

/// Complementary error function, < 1 ulp on the whole real line (msun's method).
pub(crate) fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let ax = x.abs();
    if ax < 0.84375 {
        if ax < 1.0 / (1u64 << 56) as f64 {
            return 1.0 - x;
        }
        let z = x * x;
        let y = poly(&PP, z) / poly1(&QQ, z);
        if x < 0.25 {
            return 1.0 - (x + x * y);
        }
        return 0.5 - (x - 0.5 + x * y);
    }
    if ax < 28.0 {
        let tail = erfc_tail(ax);
        return if x < 0.0 { 2.0 - tail } else { tail };
    }
    if x < 0.0 {
        2.0
    } else {
        0.0
    }
}

/// erfc(ax) for 0.84375 <= ax < 28.
fn erfc_tail(ax: f64) -> f64 {
    if ax < 1.25 {
        let s = ax - 1.0;
        return 1.0 - ERX - poly(&PA, s) / poly1(&QA, s);
    }
    let s = 1.0 / (ax * ax);
    let (r, big_s) = if ax < 1.0 / 0.35 {
        (poly(&RA, s), poly1(&SA, s))
    } else {
        (poly(&RB, s), poly1(&SB, s))
    };
    // Split exp(-x^2) as exp(-z^2) * exp((z-x)(z+x)) with z = x truncated to 32 mantissa bits,
    // so that -z*z is exact and no precision is lost in the large exponent.
    let z = f64::from_bits(ax.to_bits() & 0xffff_ffff_0000_0000);
    (-z * z - 0.5625).exp() * ((z - ax) * (z + ax) + r / big_s).exp() / ax
}

/// d1 and d2 of Black-Scholes-Merton for a spot (or forward) with carry.
fn d1_d2(ln_moneyness: f64, drift: f64, vol: f64, t_years: f64) -> (f64, f64) {
    let vol_sqrt_t = vol * t_years.sqrt();
    let d1 = (ln_moneyness + (drift + 0.5 * vol * vol) * t_years) / vol_sqrt_t;
    (d1, d1 - vol_sqrt_t)
}

/// Black-Scholes-Merton price with continuous dividend yield.
pub fn bsm_price(
    kind: OptionKind,
    spot: f64,
    strike: f64,
    t_years: f64,
    rate: f64,
    dividend_yield: f64,
    vol: f64,
) -> f64 {
    let (d1, d2) = d1_d2((spot / strike).ln(), rate - dividend_yield, vol, t_years);
    let spot_discounted = spot * (-dividend_yield * t_years).exp();
    let strike_discounted = strike * (-rate * t_years).exp();
    match kind {
        OptionKind::Call => spot_discounted * normal_cdf(d1) - strike_discounted * normal_cdf(d2),
        OptionKind::Put => strike_discounted * normal_cdf(-d2) - spot_discounted * normal_cdf(-d1),
    }
}

/// Black-Scholes-Merton theta per year (dV/dt, the textbook sign: negative for a long option
/// losing time value), with dividend yield `q`, as written in the methodology.
pub fn bsm_theta_per_year(
    kind: OptionKind,
    spot: f64,
    strike: f64,
    t_years: f64,
    rate: f64,
    dividend_yield: f64,
    vol: f64,
) -> f64 {
    let (d1, d2) = d1_d2((spot / strike).ln(), rate - dividend_yield, vol, t_years);
    let spot_discounted = spot * (-dividend_yield * t_years).exp();
    let strike_discounted = strike * (-rate * t_years).exp();
    let decay = -spot_discounted * normal_pdf(d1) * vol / (2.0 * t_years.sqrt());
    match kind {
        OptionKind::Call => {
            decay - rate * strike_discounted * normal_cdf(d2)
                + dividend_yield * spot_discounted * normal_cdf(d1)
        }
        OptionKind::Put => {
            decay + rate * strike_discounted * normal_cdf(-d2)
                - dividend_yield * spot_discounted * normal_cdf(-d1)
        }
    }
}

/// Black-76 price of an option on a futures price, discounted at `rate`.
pub fn black76_price(
    kind: OptionKind,
    futures: f64,
    strike: f64,
    t_years: f64,
    rate: f64,
    vol: f64,
) -> f64 {
    let (d1, d2) = d1_d2((futures / strike).ln(), 0.0, vol, t_years);
    let discount = (-rate * t_years).exp();
    match kind {
        OptionKind::Call => discount * (futures * normal_cdf(d1) - strike * normal_cdf(d2)),
        OptionKind::Put => discount * (strike * normal_cdf(-d2) - futures * normal_cdf(-d1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_cdf_reference_values() {
        // Values from high-precision tables (Abramowitz & Stegun 26.2, mpmath).
        let cases = [
            (0.0, 0.5),
            (1.0, 0.841_344_746_068_542_9),
            (-1.0, 0.158_655_253_931_457_05),
            (1.96, 0.975_002_104_851_779_6),
            (-3.0, 0.001_349_898_031_630_094_6),
            (-8.0, 6.220_960_574_271_784e-16),
            (-20.0, 2.753_624_118_606_233_7e-89),
            (0.5, 0.691_462_461_274_013_1),
            (2.5, 0.993_790_334_674_224),
        ];
        for (x, expected) in cases {
            let got = normal_cdf(x);
            assert!(
                (got - expected).abs() <= 2e-16_f64.max(expected * 1e-14),
                "N({x}) = {got:e}, expected {expected:e}"
            );
        }
    }

    #[test]
    fn erfc_symmetry_and_limits() {
        for x in [0.1, 0.3, 0.9, 1.1, 2.0, 3.5, 6.0] {
            assert!((erfc(x) + erfc(-x) - 2.0).abs() < 1e-15);
        }
        assert_eq!(erfc(40.0), 0.0);
        assert_eq!(erfc(-40.0), 2.0);
    }

    #[test]
    fn theta_matches_finite_difference() {
        for kind in [OptionKind::Call, OptionKind::Put] {
            let t = 0.3;
            let h = 1e-6;
            let price = |t| bsm_price(kind, 100.0, 95.0, t, 0.05, 0.02, 0.25);
            // dV/dt with t = calendar time is minus the derivative in time to expiry.
            let numeric = -(price(t + h) - price(t - h)) / (2.0 * h);
            let analytic = bsm_theta_per_year(kind, 100.0, 95.0, t, 0.05, 0.02, 0.25);
            assert!(
                (numeric - analytic).abs() < 1e-6,
                "{kind:?}: {numeric} vs {analytic}"
            );
        }
    }
}
