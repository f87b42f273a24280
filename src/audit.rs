//! The audit log: every operator action and security event as one line, JSON or CEF
//! (ArcSight Common Event Format), to stdout or a file (`[audit]`). Separate from the
//! ordinary logs (stderr) so that a SIEM can take this stream alone.
//!
//! No email, token, display name or lookup hash is ever written: an owner appears as
//! `owner`, a short keyed id (the first 12 hex of an HMAC of the owner key under the
//! index secret), which is stable across events and nodes and cannot be reversed.
//! The field list is documented in deploy/README.md "Audit log".

use std::{
    io::Write,
    net::IpAddr,
    sync::{Arc, Mutex},
};

use serde::Serialize;

use crate::{config::operators::AuditConfig, crypto::IdKeys, domain::ids::OwnerKey};

/// What happened. The wire names are stable: alerts match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A user bearer token was refused (`reason` says why).
    TokenRefused,
    /// An operator credential was refused on `/v1/admin/...`.
    AdminRefused,
    /// An upload was refused (`code` is the error code).
    UploadRefused,
    /// A rate limit or quota refused a request (`code`: which limit).
    RateLimited,
    /// An operator took an avatar down (and maybe blocked uploads until `until`).
    Takedown,
    /// An operator lifted a takedown.
    Restore,
    /// `moocard rotate-keys` ran (`count`: data keys rewrapped).
    KeyRotation,
    /// A server started in dev mode (locally signed tokens).
    DevModeStart,
}

impl EventKind {
    /// CEF severity, 0 (lowest) to 10.
    fn severity(self) -> u8 {
        match self {
            Self::TokenRefused | Self::UploadRefused | Self::RateLimited => 3,
            Self::Takedown | Self::Restore | Self::KeyRotation => 5,
            Self::AdminRefused => 7,
            Self::DevModeStart => 8,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::TokenRefused => "bearer token refused",
            Self::AdminRefused => "operator credential refused",
            Self::UploadRefused => "upload refused",
            Self::RateLimited => "rate limit hit",
            Self::Takedown => "avatar taken down",
            Self::Restore => "takedown lifted",
            Self::KeyRotation => "key rotation run",
            Self::DevModeStart => "dev mode start",
        }
    }
}

/// One audit event. Build with [`Event::new`] and the `with_*`-style fields.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// RFC 3339 UTC time with milliseconds.
    pub ts: String,
    /// Always `"audit"`, so the line is recognisable in a mixed stream.
    pub log: &'static str,
    /// What happened.
    pub event: EventKind,
    /// `success` or `failure` (a refusal is a failure of the request).
    pub outcome: &'static str,
    /// 0..=10, as in CEF.
    pub severity: u8,
    /// The operator's configured name, `cli` for the CLI, else absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Short keyed id of the owner concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Client address, when the event came from a request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src: Option<IpAddr>,
    /// A stable error code or limit name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// A sentence (operator reasons; refusal reasons that never quote a token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// RFC 3339 end of an upload block.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// A count (rewrapped keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
}

impl Event {
    /// An event of `kind`, now.
    pub fn new(kind: EventKind, success: bool) -> Self {
        Self {
            ts: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            log: "audit",
            event: kind,
            outcome: if success { "success" } else { "failure" },
            severity: kind.severity(),
            actor: None,
            owner: None,
            src: None,
            code: None,
            reason: None,
            until: None,
            count: None,
        }
    }

    /// As one CEF line (no newline).
    pub fn to_cef(&self) -> String {
        let mut ext = vec![
            ("rt", self.ts.clone()),
            ("outcome", self.outcome.to_owned()),
        ];
        let opt = [
            ("suser", self.actor.clone()),
            ("duid", self.owner.clone()),
            ("src", self.src.map(|ip| ip.to_string())),
            ("cs1", self.code.clone()),
            ("reason", self.reason.clone()),
            ("cs2", self.until.clone()),
            ("cnt", self.count.map(|n| n.to_string())),
        ];
        for (k, v) in opt {
            if let Some(v) = v {
                ext.push((k, v));
                if k == "cs1" {
                    ext.push(("cs1Label", "code".into()));
                }
                if k == "cs2" {
                    ext.push(("cs2Label", "until".into()));
                }
            }
        }
        let ext: Vec<String> = ext
            .into_iter()
            .map(|(k, v)| format!("{k}={}", cef_value(&v)))
            .collect();
        format!(
            "CEF:0|moocard|moocard|{}|{}|{}|{}|{}",
            env!("CARGO_PKG_VERSION"),
            serde_json::to_value(self.event)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            cef_header(self.event.name()),
            self.severity,
            ext.join(" ")
        )
    }
}

/// CEF header escaping: backslash and pipe.
fn cef_header(s: &str) -> String {
    s.replace('\\', "\\\\").replace('|', "\\|")
}

/// CEF extension value escaping: backslash, equals sign and line breaks.
fn cef_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('=', "\\=")
        .replace('\r', "\\r")
        .replace('\n', "\\n")
}

enum Sink {
    Off,
    Stdout,
    File(Mutex<std::fs::File>),
}

/// Where audit events go. Cheap to share (`Arc`).
pub struct AuditLog {
    sink: Sink,
    cef: bool,
    ids: IdKeys,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").field("cef", &self.cef).finish()
    }
}

impl AuditLog {
    /// Opens the configured output (a file is created 0600 and appended to).
    pub fn open(config: &AuditConfig, ids: IdKeys) -> std::io::Result<Arc<Self>> {
        let sink = match config.output.as_str() {
            "off" => Sink::Off,
            "stdout" => Sink::Stdout,
            path => {
                let mut opts = std::fs::OpenOptions::new();
                opts.append(true).create(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt as _;
                    opts.mode(0o600);
                }
                Sink::File(Mutex::new(opts.open(path)?))
            }
        };
        Ok(Arc::new(Self {
            sink,
            cef: config.format == "cef",
            ids,
        }))
    }

    /// The short keyed id of an owner, as events carry it.
    pub fn owner_id(&self, owner: &OwnerKey) -> String {
        hex::encode(&self.ids.mac("audit.owner.v1", &owner.0)[..6])
    }

    /// Writes one event. A failing write is reported on the ordinary log; the request
    /// that caused the event is not failed for it.
    pub fn record(&self, event: &Event) {
        let line = if self.cef {
            event.to_cef()
        } else {
            serde_json::to_string(event).unwrap_or_default()
        };
        let res = match &self.sink {
            Sink::Off => return,
            Sink::Stdout => writeln!(std::io::stdout().lock(), "{line}"),
            Sink::File(f) => writeln!(f.lock().unwrap_or_else(|p| p.into_inner()), "{line}"),
        };
        metrics::counter!("moocard_audit_events_total", "event" => event.event.name()).increment(1);
        if let Err(e) = res {
            tracing::error!(error = %e, "audit log write failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cef_escapes() {
        let mut e = Event::new(EventKind::Takedown, true);
        e.reason = Some("a=b | c\\d\nx".into());
        e.actor = Some("alice".into());
        let line = e.to_cef();
        assert!(line.starts_with("CEF:0|moocard|moocard|"), "{line}");
        assert!(line.contains("|takedown|avatar taken down|5|"), "{line}");
        assert!(line.contains("reason=a\\=b | c\\\\d\\nx"), "{line}");
        assert!(!line.contains('\n'));
    }
}
