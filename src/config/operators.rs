//! Settings of the operator features (issue 16): admin credentials, the audit log and the
//! limits shared by every node. Kept apart from `config.rs` so that file stays a table of
//! the sections.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// One operator credential: a name (the audit log's `actor`) and the SHA-256 of a random
/// bearer token. Only the hash is configured, so the config file does not hold the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminToken {
    /// Who holds it, e.g. `alice` or `abuse-desk`.
    pub name: String,
    /// Lowercase hex SHA-256 of the token (`moocard admin new-token NAME` prints both).
    pub sha256: String,
}

/// Operator credentials for `/v1/admin/...`. Empty: the admin API answers 401 to
/// everything (the `moocard admin` CLI still works on the database).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Operator tokens, by hash.
    pub tokens: Vec<AdminToken>,
}

impl AdminConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for t in &self.tokens {
            let hex_ok = t.sha256.len() == 64
                && t.sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if t.name.is_empty() || !hex_ok {
                return Err(ConfigError(format!(
                    "admin.tokens: each entry needs a name and sha256 = 64 lowercase hex characters (entry {:?})",
                    t.name
                )));
            }
        }
        Ok(())
    }
}

/// The audit log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// `stdout`, `off`, or a file path (appended to, created 0600).
    pub output: String,
    /// `json` (one object per line) or `cef` (ArcSight Common Event Format).
    pub format: String,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            output: "stdout".into(),
            format: "json".into(),
        }
    }
}

impl AuditConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.format.as_str(), "json" | "cef") || self.output.is_empty() {
            return Err(ConfigError(
                "audit.format must be \"json\" or \"cef\", and audit.output \"stdout\", \"off\" or a file path"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// Limits that hold across every API node (counted in the database) and per client.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuotaConfig {
    /// Uploads one owner may make per rolling 24 hours, over all nodes (0: no quota).
    pub uploads_per_day: u32,
    /// Requests to owner endpoints (`/v1/profiles/...`) one client address may make per
    /// minute on one node (0: no limit).
    pub owner_requests_per_minute_per_ip: u32,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        Self {
            uploads_per_day: 100,
            owner_requests_per_minute_per_ip: 600,
        }
    }
}
