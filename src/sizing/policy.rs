//! The policy: every threshold the guardrails use, with the methodology's defaults.
//!
//! A policy file overrides any subset of the defaults, key by key within its table. Every report
//! records `hash_hex()` of the policy it used, so the hashed bytes must be deterministic.

use serde::{Deserialize, Serialize};

use super::input::{parse_document, Fields};
use super::{InputError, SERIES_VALUES_MAX};

/// Domain separation for the policy hash: the same JSON hashed for another purpose gives a
/// different digest.

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub coefficient: CoefficientPolicy,
    pub growth: GrowthPolicy,
    pub wacc: WaccPolicy,
    pub liquidity: LiquidityPolicy,
    pub signals: SignalsPolicy,
    pub structure: StructurePolicy,
    pub timing: TimingPolicy,
    pub approval: ApprovalPolicy,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CoefficientPolicy {
    pub floor: f64,
    pub cap: f64,
    pub pcf_low: f64,
    pub pcf_high: f64,
    pub pcf_weight: f64,
    pub rsi_period: u32,
    pub theta_press_decay_per_day_min: f64,
    pub theta_press_multiplier: f64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GrowthPolicy {
    pub layer_growth_max: f64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WaccPolicy {
    pub incremental_bps_max: f64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LiquidityPolicy {
    pub stress_sigma: f64,
    pub quick_ratio_min: f64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SignalsPolicy {
    pub macd_fast: u32,
    pub macd_slow: u32,
    pub macd_signal: u32,
    pub require_macd_support: bool,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StructurePolicy {
    pub time_shift_days_min: u32,
    pub parity_tolerance_usd: f64,
    pub quote_deviation_max: f64,
    pub require_layer_cost_within_irr: bool,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimingPolicy {
    pub blackout_padding_minutes: u32,
    pub snapshot_max_age_minutes: u32,
}

/// Used by the approval workflow, not by `evaluate`; part of the policy so that it is hashed
/// and governed together with the thresholds.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApprovalPolicy {
    pub proposal_ttl_seconds: u64,
    pub proposer_counts: bool,
}

impl Default for Policy {
    /// The methodology's default table.
    fn default() -> Policy {
        Policy {
            coefficient: CoefficientPolicy {
                floor: 0.45,
                cap: 0.65,
                pcf_low: 10.0,
                pcf_high: 25.0,
                pcf_weight: 0.5,
                rsi_period: 14,
                theta_press_decay_per_day_min: 0.05,
                theta_press_multiplier: 0.80,
            },
            growth: GrowthPolicy {
                layer_growth_max: 1.25,
            },
            wacc: WaccPolicy {
                incremental_bps_max: 18.0,
            },
            liquidity: LiquidityPolicy {
                stress_sigma: 3.0,
                quick_ratio_min: 1.4,
            },
            signals: SignalsPolicy {
                macd_fast: 12,
                macd_slow: 26,
                macd_signal: 9,
                require_macd_support: true,
            },
            structure: StructurePolicy {
                time_shift_days_min: 14,
                parity_tolerance_usd: 0.15,
                quote_deviation_max: 0.25,
                require_layer_cost_within_irr: true,
            },
            timing: TimingPolicy {
                blackout_padding_minutes: 30,
                snapshot_max_age_minutes: 30,
            },
            approval: ApprovalPolicy {
                proposal_ttl_seconds: 14_400,
                proposer_counts: false,
            },
        }
    }
}

const TABLES: &[&str] = &[
    "coefficient",
    "growth",
    "wacc",
    "liquidity",
    "signals",
    "structure",
    "timing",
    "approval",
];

impl Policy {
    /// Reads a policy file: starts from the defaults and overrides each key the file names.
    /// Unknown tables or keys and broken constraints are input errors.
    pub fn from_toml_str(text: &str) -> Result<Policy, InputError> {
        let doc = parse_document(text, "policy")?;
        let root = Fields::new("", &doc, TABLES)?;
        let mut p = Policy::default();

        if let Some(t) = root.table_opt(
            "coefficient",
            &[
                "floor",
                "cap",
                "pcf_low",
                "pcf_high",
                "pcf_weight",
                "rsi_period",
                "theta_press_decay_per_day_min",
                "theta_press_multiplier",
            ],
        )? {
            let c = &mut p.coefficient;
            override_f64(&t, "floor", &mut c.floor)?;
            override_f64(&t, "cap", &mut c.cap)?;
            override_f64(&t, "pcf_low", &mut c.pcf_low)?;
            override_f64(&t, "pcf_high", &mut c.pcf_high)?;
            override_f64(&t, "pcf_weight", &mut c.pcf_weight)?;
            override_u32(&t, "rsi_period", &mut c.rsi_period)?;
            override_f64(
                &t,
                "theta_press_decay_per_day_min",
                &mut c.theta_press_decay_per_day_min,
            )?;
            override_f64(&t, "theta_press_multiplier", &mut c.theta_press_multiplier)?;
        }
        if let Some(t) = root.table_opt("growth", &["layer_growth_max"])? {
            override_f64(&t, "layer_growth_max", &mut p.growth.layer_growth_max)?;
        }
        if let Some(t) = root.table_opt("wacc", &["incremental_bps_max"])? {
            override_f64(&t, "incremental_bps_max", &mut p.wacc.incremental_bps_max)?;
        }
        if let Some(t) = root.table_opt("liquidity", &["stress_sigma", "quick_ratio_min"])? {
            override_f64(&t, "stress_sigma", &mut p.liquidity.stress_sigma)?;
            override_f64(&t, "quick_ratio_min", &mut p.liquidity.quick_ratio_min)?;
        }
        if let Some(t) = root.table_opt(
            "signals",
            &[
                "macd_fast",
                "macd_slow",
                "macd_signal",
                "require_macd_support",
            ],
        )? {
            let s = &mut p.signals;
            override_u32(&t, "macd_fast", &mut s.macd_fast)?;
            override_u32(&t, "macd_slow", &mut s.macd_slow)?;
            override_u32(&t, "macd_signal", &mut s.macd_signal)?;
            override_bool(&t, "require_macd_support", &mut s.require_macd_support)?;
        }
        if let Some(t) = root.table_opt(
            "structure",
            &[
                "time_shift_days_min",
                "parity_tolerance_usd",
                "quote_deviation_max",
                "require_layer_cost_within_irr",
            ],
        )? {
            let s = &mut p.structure;
            override_u32(&t, "time_shift_days_min", &mut s.time_shift_days_min)?;
            override_f64(&t, "parity_tolerance_usd", &mut s.parity_tolerance_usd)?;
            override_f64(&t, "quote_deviation_max", &mut s.quote_deviation_max)?;
            override_bool(
                &t,
                "require_layer_cost_within_irr",
                &mut s.require_layer_cost_within_irr,
            )?;
        }
        if let Some(t) = root.table_opt(
            "timing",
            &["blackout_padding_minutes", "snapshot_max_age_minutes"],
        )? {
            let s = &mut p.timing;
            override_u32(
                &t,
                "blackout_padding_minutes",
                &mut s.blackout_padding_minutes,
            )?;
            override_u32(
                &t,
                "snapshot_max_age_minutes",
                &mut s.snapshot_max_age_minutes,
            )?;
        }
        if let Some(t) = root.table_opt("approval", &["proposal_ttl_seconds", "proposer_counts"])? {
            if let Some(v) = t.u64_opt("proposal_ttl_seconds")? {
                p.approval.proposal_ttl_seconds = v;
            }
            override_bool(&t, "proposer_counts", &mut p.approval.proposer_counts)?;
        }
        p.validate()?;
        Ok(p)
    }

    /// The full effective policy as TOML (every key, defaults included). Round-trips through
    /// `from_toml_str`.
    pub fn to_toml_string(&self) -> String {
        // Serializing plain structs of numbers and booleans cannot fail.
        toml::to_string(self).expect("policy serializes to TOML")
    }

    /// Deterministic JSON of the effective policy: fields in struct declaration order, no
    /// whitespace, numbers as serde_json (ryu) writes them (`0.45`, `18.0`, `14`).
    /// THIS STRING IS WHAT GETS HASHED (see `hash_hex`): reordering or renaming a field, or
    /// changing an integer field to a float, changes every policy hash.
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(self).expect("policy serializes to JSON")
    }

    /// Lowercase hex SHA-256 of `b"rollbook/v1/policy\0"` followed by `canonical_json()`; the
    /// bytes are laid out in `crypto::canonical::policy_hash`, with every other hashed string.
    pub fn hash_hex(&self) -> String {
        crate::crypto::hex::to_hex(&crate::crypto::canonical::policy_hash(
            &self.canonical_json(),
        ))
    }

    /// Reads a policy back from its canonical JSON (as stored in the ledger), strictly: every
    /// key present, no unknown key, every constraint checked.
    pub fn from_canonical_json(text: &str) -> Result<Policy, InputError> {
        let policy: Policy = serde_json::from_str(text).map_err(|error| {
            InputError::new("policy", format!("is not a valid policy JSON: {error}"))
        })?;
        policy.validate()?;
        Ok(policy)
    }

    /// Checks the constraints between keys. `evaluate` calls this too, because the fields are
    /// public and a policy may be built in code rather than read from a file.
    pub fn validate(&self) -> Result<(), InputError> {
        let ttl = self.approval.proposal_ttl_seconds;
        if !(1..=super::PROPOSAL_TTL_SECONDS_MAX).contains(&ttl) {
            return Err(InputError::new(
                "approval.proposal_ttl_seconds",
                format!(
                    "must be between 1 and {} (one year), got {ttl}",
                    super::PROPOSAL_TTL_SECONDS_MAX
                ),
            ));
        }
        let c = &self.coefficient;
        finite_in("coefficient.floor", c.floor, 0.0, 1.0)?;
        finite_in("coefficient.cap", c.cap, 0.0, 1.0)?;
        if c.floor > c.cap {
            return Err(InputError::new(
                "coefficient.floor",
                format!(
                    "must be <= coefficient.cap, got floor {} > cap {}",
                    c.floor, c.cap
                ),
            ));
        }
        finite("coefficient.pcf_low", c.pcf_low)?;
        finite("coefficient.pcf_high", c.pcf_high)?;
        if c.pcf_low >= c.pcf_high {
            return Err(InputError::new(
                "coefficient.pcf_low",
                format!(
                    "must be < coefficient.pcf_high, got pcf_low {} >= pcf_high {}",
                    c.pcf_low, c.pcf_high
                ),
            ));
        }
        finite_in("coefficient.pcf_weight", c.pcf_weight, 0.0, 1.0)?;
        period("coefficient.rsi_period", c.rsi_period)?;
        finite_in(
            "coefficient.theta_press_decay_per_day_min",
            c.theta_press_decay_per_day_min,
            0.0,
            f64::MAX,
        )?;
        finite_in(
            "coefficient.theta_press_multiplier",
            c.theta_press_multiplier,
            0.0,
            1.0,
        )?;
        finite_in(
            "growth.layer_growth_max",
            self.growth.layer_growth_max,
            0.0,
            f64::MAX,
        )?;
        finite_in(
            "wacc.incremental_bps_max",
            self.wacc.incremental_bps_max,
            0.0,
            f64::MAX,
        )?;
        finite_in(
            "liquidity.stress_sigma",
            self.liquidity.stress_sigma,
            0.0,
            f64::MAX,
        )?;
        finite_in(
            "liquidity.quick_ratio_min",
            self.liquidity.quick_ratio_min,
            0.0,
            f64::MAX,
        )?;
        let s = &self.signals;
        period("signals.macd_fast", s.macd_fast)?;
        period("signals.macd_slow", s.macd_slow)?;
        period("signals.macd_signal", s.macd_signal)?;
        if s.macd_fast >= s.macd_slow {
            return Err(InputError::new(
                "signals.macd_fast",
                format!(
                    "must be < signals.macd_slow, got macd_fast {} >= macd_slow {}",
                    s.macd_fast, s.macd_slow
                ),
            ));
        }
        // The MACD needs slow + signal - 1 values; more than the longest series is unusable.
        if (s.macd_slow + s.macd_signal - 1) as usize > SERIES_VALUES_MAX {
            return Err(InputError::new(
                "signals.macd_signal",
                format!("with signals.macd_slow must need at most {SERIES_VALUES_MAX} values"),
            ));
        }
        finite_in(
            "structure.parity_tolerance_usd",
            self.structure.parity_tolerance_usd,
            0.0,
            f64::MAX,
        )?;
        finite_in(
            "structure.quote_deviation_max",
            self.structure.quote_deviation_max,
            0.0,
            f64::MAX,
        )?;
        Ok(())
    }
}

fn override_f64(t: &Fields, key: &str, slot: &mut f64) -> Result<(), InputError> {
    if let Some(v) = t.f64_opt(key)? {
        *slot = v;
    }
    Ok(())
}

fn override_u32(t: &Fields, key: &str, slot: &mut u32) -> Result<(), InputError> {
    if let Some(v) = t.u32_opt(key)? {
        *slot = v;
    }
    Ok(())
}

fn override_bool(t: &Fields, key: &str, slot: &mut bool) -> Result<(), InputError> {
    if let Some(v) = t.bool_opt(key)? {
        *slot = v;
    }
    Ok(())
}

fn finite(field: &str, x: f64) -> Result<(), InputError> {
    if x.is_finite() {
        Ok(())
    } else {
        Err(InputError::new(field, format!("must be finite, got {x}")))
    }
}

fn finite_in(field: &str, x: f64, lo: f64, hi: f64) -> Result<(), InputError> {
    finite(field, x)?;
    if x < lo || x > hi {
        let rule = if hi == f64::MAX {
            format!("must be >= {lo}, got {x}")
        } else {
            format!("must be in [{lo}, {hi}], got {x}")
        };
        return Err(InputError::new(field, rule));
    }
    Ok(())
}

/// Periods are counts of daily values: at least 1, and at most the longest series accepted.
fn period(field: &str, n: u32) -> Result<(), InputError> {
    if n < 1 || n as usize > SERIES_VALUES_MAX {
        return Err(InputError::new(
            field,
            format!("must be in [1, {SERIES_VALUES_MAX}], got {n}"),
        ));
    }
    Ok(())
}
