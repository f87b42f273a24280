//! The audit log (issue 16): each event type written as JSON lines and as CEF, read back
//! by a parser of each format, with no email, hash or token in it.

use std::collections::BTreeMap;

use axum::http::Method;
use serde_json::json;

use crate::{
    operators::{md5_of, send, with_operator, OPERATOR_TOKEN},
    support::{fixture, TestApp},
};

#[tokio::test]
async fn audit_log_json_and_cef() {
    for format in ["json", "cef"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.log");
        let t = TestApp::with_config(|c| {
            with_operator(c);
            c.audit.output = path.display().to_string();
            c.audit.format = format.into();
            c.queue.uploads_per_window = 1;
        })
        .await;
        let email = "audited@example.com";
        let tok = t.token(email);
        // A refused token, a refused upload, a rate limit, a takedown with a block, a restore.
        t.get(&format!("/v1/profiles/{email}"), Some("not.a.jwt"))
            .await;
        let uri = format!("/v1/profiles/{email}/avatar");
        let text = Some(("image/png", fixture("images/not-an-image.txt")));
        t.call(Method::PUT, &uri, Some(&tok), text)
            .await
            .assert_error(415, "unsupported_media_type");
        let jpeg = || Some(("image/jpeg", fixture("images/grey.jpg")));
        assert_eq!(
            t.call(Method::PUT, &uri, Some(&tok), jpeg()).await.status,
            202
        );
        t.call(Method::PUT, &uri, Some(&tok), jpeg())
            .await
            .assert_error(429, "rate_limited");
        let body = json!({"target": email, "reason": "test | a=b", "block_uploads": "1h"});
        assert_eq!(
            send(
                &t.router,
                Method::POST,
                "/v1/admin/takedowns",
                Some(OPERATOR_TOKEN),
                Some(body)
            )
            .await
            .status,
            201
        );
        send(
            &t.router,
            Method::GET,
            "/v1/admin/takedowns",
            Some("wrong"),
            None,
        )
        .await
        .assert_error(401, "invalid_token");
        assert_eq!(
            send(
                &t.router,
                Method::DELETE,
                &format!("/v1/admin/takedowns/{email}"),
                Some(OPERATOR_TOKEN),
                None
            )
            .await
            .status,
            204
        );

        let log = std::fs::read_to_string(&path).expect("audit file");
        assert!(
            !log.contains(email) && !log.contains(&md5_of(email)) && !log.contains(&tok),
            "{log}"
        );
        let events: Vec<BTreeMap<String, String>> = log.lines().map(|l| parse(format, l)).collect();
        let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str()).collect();
        assert_eq!(
            kinds,
            [
                "token_refused",
                "upload_refused",
                "rate_limited",
                "takedown",
                "admin_refused",
                "restore"
            ],
            "{log}"
        );
        let owner = &events[1]["owner"];
        assert_eq!(owner.len(), 12);
        assert_eq!(&events[2]["owner"], owner, "one short id per owner");
        assert_eq!(&events[3]["owner"], owner);
        assert_eq!(events[1]["code"], "unsupported_media_type");
        assert_eq!(events[3]["actor"], "alice");
        assert_eq!(events[3]["reason"], "test | a=b");
        assert!(events[3]["until"].starts_with("20"));
        assert_eq!(events[0]["outcome"], "failure");
    }
}

/// One audit line as flat `field -> text`, read back from JSON or from CEF (whose
/// header and extension escaping it undoes).
fn parse(format: &str, line: &str) -> BTreeMap<String, String> {
    if format == "json" {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON object per line");
        assert_eq!(v["log"], "audit");
        return v
            .as_object()
            .expect("object")
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                )
            })
            .collect();
    }
    let rest = line.strip_prefix("CEF:0|").expect("CEF header");
    // Header: vendor|product|version|signature id|name|severity|extension; `\|` escapes.
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = rest.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if fields.len() < 6 => cur.push(chars.next().expect("escaped")),
            '|' if fields.len() < 6 => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    assert_eq!(fields.len(), 6, "{line}");
    assert_eq!(&fields[..2], ["moocard", "moocard"]);
    let mut out = BTreeMap::from([("event".to_owned(), fields[3].clone())]);
    // Extension: key=value pairs; a key starts after a space and ends at an unescaped `=`.
    let mut key = String::new();
    let mut val = String::new();
    let mut in_key = true;
    let mut it = cur.chars().peekable();
    while let Some(c) = it.next() {
        if in_key {
            if c == '=' {
                in_key = false;
            } else {
                key.push(c);
            }
            continue;
        }
        match c {
            '\\' => match it.next().expect("escaped") {
                'n' => val.push('\n'),
                e => val.push(e),
            },
            ' ' if next_is_key(&it) => {
                out.insert(std::mem::take(&mut key), std::mem::take(&mut val));
                in_key = true;
            }
            _ => val.push(c),
        }
    }
    out.insert(key, val);
    for (cef, ours) in [
        ("suser", "actor"),
        ("duid", "owner"),
        ("cs1", "code"),
        ("cs2", "until"),
    ] {
        if let Some(v) = out.remove(cef) {
            out.insert(ours.into(), v);
        }
    }
    out
}

fn next_is_key(it: &std::iter::Peekable<std::str::Chars<'_>>) -> bool {
    let rest: String = it.clone().collect();
    rest.split_once('=')
        .is_some_and(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric()))
}
