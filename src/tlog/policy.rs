//! Trust policies (c2sp.org/tlog-policy): which logs and witnesses are known, and the quorum of
//! witnesses whose cosignatures make a checkpoint valid.
//!
//! ```text
//! log <vkey> [<url>]
//! witness <name> <vkey> [<url>]
//! group <name> all|any|<k> <name>...
//! quorum <name>
//! ```
//!
//! Deviations, all refusals (a verifier must never be weaker than the policy its reader meant):
//! `quorum none` is refused, because rollbook uses a policy to check completeness and a policy
//! without witnesses cannot; a `witness` key that is not an Ed25519 cosignature key (type 0x04,
//! e.g. ML-DSA-44) and a `log` key that is not Ed25519 (type 0x01) are refused, because rollbook
//! cannot verify them and ignoring them would lower the quorum silently; names must be UTF-8
//! (compared byte for byte, never normalised); a key may not be both a log's and a witness's; a
//! name may be a member of at most one group (the spec's "listed as a group member at most
//! once", read across the file).

use std::collections::HashMap;

use thiserror::Error;

use super::note::{verified_signatures, Note, NoteError, VerifierKey, VerifierKind};

/// Largest policy file accepted.
pub const POLICY_LEN_MAX_BYTES: usize = 64 * 1024;

/// Most logs, witnesses or groups a policy may define (the spec recommends supporting 32).
pub const POLICY_ENTRIES_MAX: usize = 256;

/// A policy file refused: the line (1-based) and why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("policy line {line}: {reason}")]
pub struct PolicyError {
    pub line: usize,
    pub reason: String,
}

/// A `log` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyLog {
    pub key: VerifierKey,
    pub url: Option<String>,
}

/// A `witness` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyWitness {
    pub name: String,
    pub key: VerifierKey,
    pub url: Option<String>,
}

/// A witness of the policy that cosigned a note, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigner {
    pub witness_name: String,
    pub time_s: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    Witness(usize),
    Group(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    threshold: usize,
    members: Vec<Member>,
}

/// A parsed policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    logs: Vec<PolicyLog>,
    witnesses: Vec<PolicyWitness>,
    groups: Vec<Group>,
    quorum: Member,
}

impl Policy {
    /// Parses a policy file (bytes: the spec treats it as octets).
    pub fn parse(bytes: &[u8]) -> Result<Policy, PolicyError> {
        if bytes.len() > POLICY_LEN_MAX_BYTES {
            return Err(PolicyError {
                line: 0,
                reason: format!(
                    "the file is {} bytes; at most {POLICY_LEN_MAX_BYTES}",
                    bytes.len()
                ),
            });
        }
        let mut builder = Builder::default();
        for (index, line) in bytes.split(|b| *b == b'\n').enumerate() {
            builder.line(line).map_err(|reason| PolicyError {
                line: index + 1,
                reason,
            })?;
        }
        let last_line = bytes.split(|b| *b == b'\n').count();
        builder.finish().map_err(|reason| PolicyError {
            line: last_line,
            reason,
        })
    }

    pub fn logs(&self) -> &[PolicyLog] {
        &self.logs
    }

    pub fn witnesses(&self) -> &[PolicyWitness] {
        &self.witnesses
    }

    /// The policy witnesses whose cosignature on `note` verifies, each with its time (the latest,
    /// if a witness cosigned twice). A failing cosignature by a policy witness refuses the note.
    pub fn cosigners(&self, note: &Note) -> Result<Vec<Cosigner>, NoteError> {
        let keys: Vec<VerifierKey> = self.witnesses.iter().map(|w| w.key.clone()).collect();
        let mut latest: Vec<Option<u64>> = vec![None; keys.len()];
        for verified in verified_signatures(note, &keys)? {
            let time_s = verified.time_s.expect("witness keys are cosignature keys");
            let slot = &mut latest[verified.key_index];
            *slot = Some(slot.map_or(time_s, |seen| seen.max(time_s)));
        }
        Ok(self
            .witnesses
            .iter()
            .zip(latest)
            .filter_map(|(witness, time_s)| {
                time_s.map(|time_s| Cosigner {
                    witness_name: witness.name.clone(),
                    time_s,
                })
            })
            .collect())
    }

    /// Whether witnesses with these names (the ones whose cosignatures count) satisfy the quorum.
    pub fn quorum_met(&self, cosigned_witness_names: &[&str]) -> bool {
        let cosigned: Vec<bool> = self
            .witnesses
            .iter()
            .map(|witness| cosigned_witness_names.contains(&witness.name.as_str()))
            .collect();
        self.member_met(self.quorum, &cosigned)
    }

    fn member_met(&self, member: Member, cosigned: &[bool]) -> bool {
        match member {
            Member::Witness(index) => cosigned[index],
            // Groups only name earlier groups, so the recursion ends (depth <= group count).
            Member::Group(index) => {
                let group = &self.groups[index];
                let met = group
                    .members
                    .iter()
                    .filter(|member| self.member_met(**member, cosigned))
                    .count();
                met >= group.threshold
            }
        }
    }
}

/// The file read line by line; names must be defined before they are used.
#[derive(Default)]
struct Builder {
    logs: Vec<PolicyLog>,
    witnesses: Vec<PolicyWitness>,
    groups: Vec<Group>,
    names: HashMap<String, Member>,
    in_a_group: Vec<String>,
    quorum: Option<Member>,
}

impl Builder {
    fn line(&mut self, line: &[u8]) -> Result<(), String> {
        if let Some(byte) = line
            .iter()
            .find(|b| !matches!(**b, b'\t' | 0x20..=0x7e | 0x80..=0xff))
        {
            return Err(format!("byte {byte:#04x} is not allowed (only tab, newline, printable ASCII and non-ASCII octets)"));
        }
        let line = std::str::from_utf8(line).map_err(|_| {
            "the line is not UTF-8; rollbook reads names and keys as UTF-8".to_string()
        })?;
        let words: Vec<&str> = line.split([' ', '\t']).filter(|w| !w.is_empty()).collect();
        match words.as_slice() {
            [] => Ok(()),
            [first, ..] if first.starts_with('#') => Ok(()),
            ["log", vkey] => self.log(vkey, None),
            ["log", vkey, url] => self.log(vkey, Some(url)),
            ["witness", name, vkey] => self.witness(name, vkey, None),
            ["witness", name, vkey, url] => self.witness(name, vkey, Some(url)),
            ["group", name, threshold, members @ ..] if !members.is_empty() => {
                self.group(name, threshold, members)
            }
            ["quorum", name] => self.set_quorum(name),
            [keyword, ..] => Err(format!(
                "`{keyword}` line not understood: expected `log <vkey> [<url>]`, `witness <name> \
                 <vkey> [<url>]`, `group <name> all|any|<k> <name>...` or `quorum <name>`"
            )),
        }
    }

    fn log(&mut self, vkey: &str, url: Option<&str>) -> Result<(), String> {
        let key = parse_key(
            vkey,
            VerifierKind::Ed25519,
            "a log key must be Ed25519 (type 0x01)",
        )?;
        self.check_new_key(&key)?;
        if self.logs.len() == POLICY_ENTRIES_MAX {
            return Err(format!("more than {POLICY_ENTRIES_MAX} logs"));
        }
        self.logs.push(PolicyLog {
            key,
            url: url.map(str::to_string),
        });
        Ok(())
    }

    fn witness(&mut self, name: &str, vkey: &str, url: Option<&str>) -> Result<(), String> {
        let key = parse_key(
            vkey,
            VerifierKind::CosignatureV1,
            "a witness key must be an Ed25519 cosignature key (type 0x04); rollbook cannot verify \
             other cosignatures, and ignoring the witness would weaken the quorum",
        )?;
        self.check_new_name(name)?;
        self.check_new_key(&key)?;
        if self.witnesses.len() == POLICY_ENTRIES_MAX {
            return Err(format!("more than {POLICY_ENTRIES_MAX} witnesses"));
        }
        self.names
            .insert(name.to_string(), Member::Witness(self.witnesses.len()));
        self.witnesses.push(PolicyWitness {
            name: name.to_string(),
            key,
            url: url.map(str::to_string),
        });
        Ok(())
    }

    fn group(&mut self, name: &str, threshold: &str, members: &[&str]) -> Result<(), String> {
        self.check_new_name(name)?;
        if self.groups.len() == POLICY_ENTRIES_MAX {
            return Err(format!("more than {POLICY_ENTRIES_MAX} groups"));
        }
        let mut resolved = Vec::with_capacity(members.len());
        for member in members {
            if self.in_a_group.iter().any(|listed| listed == member) {
                return Err(format!("`{member}` is already a member of a group"));
            }
            resolved.push(self.resolve(member)?);
            self.in_a_group.push(member.to_string());
        }
        let threshold = match threshold {
            "all" => members.len(),
            "any" => 1,
            k => match super::checkpoint::parse_size(k) {
                Some(k) if k >= 1 && k <= members.len() as u64 => k as usize,
                _ => {
                    return Err(format!(
                        "group threshold `{k}` must be all, any or a decimal from 1 to {}",
                        members.len()
                    ))
                }
            },
        };
        self.names
            .insert(name.to_string(), Member::Group(self.groups.len()));
        self.groups.push(Group {
            threshold,
            members: resolved,
        });
        Ok(())
    }

    fn set_quorum(&mut self, name: &str) -> Result<(), String> {
        if self.quorum.is_some() {
            return Err("a second quorum line; a policy has exactly one".to_string());
        }
        if name == "none" {
            return Err(
                "`quorum none` is refused: rollbook checks completeness with witness \
                        cosignatures, and a policy without them would check nothing"
                    .to_string(),
            );
        }
        self.quorum = Some(self.resolve(name)?);
        Ok(())
    }

    fn resolve(&self, name: &str) -> Result<Member, String> {
        if name == "none" {
            return Err("`none` cannot be a group member".to_string());
        }
        self.names
            .get(name)
            .copied()
            .ok_or_else(|| format!("`{name}` is not a witness or group defined on an earlier line"))
    }

    fn check_new_name(&self, name: &str) -> Result<(), String> {
        if name == "none" {
            return Err("`none` is a predefined name and cannot be defined".to_string());
        }
        if self.names.contains_key(name) {
            return Err(format!("`{name}` is defined twice"));
        }
        Ok(())
    }

    /// Duplicates are keys that wrap the same public key, whatever their names and ids.
    fn check_new_key(&self, key: &VerifierKey) -> Result<(), String> {
        let taken = self.logs.iter().map(|log| &log.key);
        let taken = taken.chain(self.witnesses.iter().map(|witness| &witness.key));
        match taken
            .into_iter()
            .any(|other| other.public_key() == key.public_key())
        {
            true => Err(format!(
                "the key of `{}` is already a log's or witness's key in this policy",
                key.key_name()
            )),
            false => Ok(()),
        }
    }

    fn finish(self) -> Result<Policy, String> {
        let quorum = self.quorum.ok_or("the policy has no quorum line")?;
        Ok(Policy {
            logs: self.logs,
            witnesses: self.witnesses,
            groups: self.groups,
            quorum,
        })
    }
}

fn parse_key(vkey: &str, kind: VerifierKind, wrong_kind: &str) -> Result<VerifierKey, String> {
    let key = VerifierKey::parse(vkey).map_err(|error| match error {
        NoteError::UnsupportedKeyType { .. } => format!("{error}; {wrong_kind}"),
        other => other.to_string(),
    })?;
    match key.kind() == kind {
        true => Ok(key),
        false => Err(wrong_kind.to_string()),
    }
}
