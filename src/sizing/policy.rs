//! The policy: every threshold the guardrails use, with the methodology's defaults.
//!
//! A policy file overrides any subset of the defaults, key by key within its table. Every report
//! records `hash_hex()` of the policy it used, so the hashed bytes must be deterministic.

use serde::{Deserialize, Serialize};

use super::input;
use super::{InputError, SERIES_VALUES_MAX};

/// Every threshold of the guardrails. Its canonical JSON is hashed (`hash_hex`): the field
/// order and types are part of every recorded report.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    #[serde(deserialize_with = "input::table")]
    pub coefficient: CoefficientPolicy,
    #[serde(deserialize_with = "input::table")]
    pub growth: GrowthPolicy,
    #[serde(deserialize_with = "input::table")]
    pub wacc: WaccPolicy,
    #[serde(deserialize_with = "input::table")]
    pub liquidity: LiquidityPolicy,
    #[serde(deserialize_with = "input::table")]
    pub signals: SignalsPolicy,
    #[serde(deserialize_with = "input::table")]
    pub structure: StructurePolicy,
    #[serde(deserialize_with = "input::table")]
    pub timing: TimingPolicy,
    #[serde(deserialize_with = "input::table")]
    pub approval: ApprovalPolicy,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CoefficientPolicy {
    #[serde(deserialize_with = "input::number")]
    pub floor: f64,
    #[serde(deserialize_with = "input::number")]
    pub cap: f64,
    #[serde(deserialize_with = "input::number")]
    pub pcf_low: f64,
    #[serde(deserialize_with = "input::number")]
    pub pcf_high: f64,
    #[serde(deserialize_with = "input::number")]
    pub pcf_weight: f64,
    #[serde(deserialize_with = "input::count")]
    pub rsi_period: u32,
    #[serde(deserialize_with = "input::number")]
    pub theta_press_decay_per_day_min: f64,
    #[serde(deserialize_with = "input::number")]
    pub theta_press_multiplier: f64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GrowthPolicy {
    #[serde(deserialize_with = "input::number")]
    pub layer_growth_max: f64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WaccPolicy {
    #[serde(deserialize_with = "input::number")]
    pub incremental_bps_max: f64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LiquidityPolicy {
    #[serde(deserialize_with = "input::number")]
    pub stress_sigma: f64,
    #[serde(deserialize_with = "input::number")]
    pub quick_ratio_min: f64,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SignalsPolicy {
    #[serde(deserialize_with = "input::count")]
    pub macd_fast: u32,
    #[serde(deserialize_with = "input::count")]
    pub macd_slow: u32,
    #[serde(deserialize_with = "input::count")]
    pub macd_signal: u32,
    #[serde(deserialize_with = "input::flag")]
    pub require_macd_support: bool,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StructurePolicy {
    #[serde(deserialize_with = "input::count")]
    pub time_shift_days_min: u32,
    #[serde(deserialize_with = "input::number")]
    pub parity_tolerance_usd: f64,
    #[serde(deserialize_with = "input::number")]
    pub quote_deviation_max: f64,
    #[serde(deserialize_with = "input::flag")]
    pub require_layer_cost_within_irr: bool,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimingPolicy {
    #[serde(deserialize_with = "input::count")]
    pub blackout_padding_minutes: u32,
    #[serde(deserialize_with = "input::count")]
    pub snapshot_max_age_minutes: u32,
    /// Used by the ledger's commands, not by `evaluate`: how far a client's clock may be from
    /// the ledger's before a command is refused (`docs/methodology.md`, "Clocks").
    #[serde(deserialize_with = "input::count")]
    pub clock_skew_max_seconds: u32,
}

/// Used by the approval workflow, not by `evaluate`; part of the policy so that it is hashed
/// and governed together with the thresholds.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApprovalPolicy {
    #[serde(deserialize_with = "input::seconds")]
    pub proposal_ttl_seconds: u64,
    #[serde(deserialize_with = "input::flag")]
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
                clock_skew_max_seconds: 60,
            },
            approval: ApprovalPolicy {
                proposal_ttl_seconds: 14_400,
                proposer_counts: false,
            },
        }
    }
}

impl Policy {
    /// Reads a policy file: starts from the defaults and overrides each key the file names.
    /// Unknown tables or keys and broken constraints are input errors.
    pub fn from_toml_str(text: &str) -> Result<Policy, InputError> {
        let policy = input::read_over(text, "policy", &Policy::default())?;
        policy.validate()?;
        Ok(policy)
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

    /// Lowercase hex SHA-256 of `b"rollbook/v4/policy\0"` followed by `canonical_json()`; the
    /// bytes are laid out in `crypto::canonical::policy_hash`, with every other hashed string.
    pub fn hash_hex(&self) -> String {
        crate::crypto::to_hex(&crate::crypto::canonical::policy_hash(
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
        let skew = self.timing.clock_skew_max_seconds;
        if !(1..=super::CLOCK_SKEW_SECONDS_MAX).contains(&skew) {
            return Err(InputError::new(
                "timing.clock_skew_max_seconds",
                format!(
                    "must be between 1 and {} (one day), got {skew}",
                    super::CLOCK_SKEW_SECONDS_MAX
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
