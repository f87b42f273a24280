//! Envelope encryption as seen from outside: nothing readable in the database, tampering
//! detected, a wrong key refused at start-up, and online key rotation.

use moocard::{config::Config, db::DbPool, keys::generate_b64, App, Migrations};
use serde_json::json;

use crate::support::{test_config, with_keks, TestApp, TestDb};

const EMAIL: &str = "plaintext.canary@example.org";
const NAME: &str = "Zanzibar Quokka";

async fn database_bytes(t: &TestApp) -> Vec<u8> {
    match &t.app.pool {
        DbPool::Sqlite(pool) => {
            sqlx::query("PRAGMA wal_checkpoint(FULL)")
                .execute(pool)
                .await
                .expect("checkpoint");
            let mut all = Vec::new();
            for entry in std::fs::read_dir(t.db.dir.path()).expect("dir") {
                let path = entry.expect("entry").path();
                if path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("moocard.db"))
                {
                    all.extend(std::fs::read(path).expect("read"));
                }
            }
            all
        }
        DbPool::MySql(_) => {
            let url = url::Url::parse(&t.db.url).expect("url");
            let out = std::process::Command::new("mysqldump")
                .args([
                    "-h",
                    url.host_str().unwrap_or("127.0.0.1"),
                    "-P",
                    &url.port().unwrap_or(3306).to_string(),
                ])
                .args([
                    "-u",
                    url.username(),
                    "--skip-extended-insert",
                    url.path().trim_start_matches('/'),
                ])
                .output()
                .expect("mysqldump runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            out.stdout
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let lower: Vec<u8> = haystack.to_ascii_lowercase();
    lower
        .windows(needle.len())
        .any(|w| w == needle.to_ascii_lowercase().as_slice())
}

#[tokio::test]
async fn no_email_or_display_name_in_the_database() {
    let t = TestApp::new().await;
    let tok = t.token(EMAIL);
    let uri = format!("/v1/profiles/{EMAIL}");
    assert_eq!(
        t.patch_json(&uri, &tok, json!({"display_name": NAME}))
            .await
            .status,
        200
    );
    let bytes = database_bytes(&t).await;
    assert!(bytes.len() > 1000, "read the database");
    use md5::Digest as _;
    let md5 = hex::encode(md5::Md5::digest(EMAIL.as_bytes()));
    let sha = hex::encode(sha2::Sha256::digest(EMAIL.as_bytes()));
    for needle in [
        EMAIL,
        "plaintext.canary",
        NAME,
        "Quokka",
        &md5,
        &sha,
        &hex::encode(EMAIL),
        &hex::encode(NAME),
    ] {
        assert!(
            !contains(&bytes, needle.as_bytes()),
            "found {needle:?} in the database"
        );
    }
    // The same data reads back through the API.
    assert_eq!(t.get(&uri, Some(&tok)).await.json()["display_name"], NAME);
}

#[tokio::test]
async fn a_flipped_ciphertext_byte_is_a_clear_error() {
    let t = TestApp::new().await;
    let tok = t.token("a@b.c");
    t.patch_json("/v1/profiles/a@b.c", &tok, json!({"display_name": "Ada"}))
        .await;
    // Flip one ciphertext byte behind the server's back.
    macro_rules! flip {
        ($pool:expr) => {{
            let (mut ct,): (Vec<u8>,) = sqlx::query_as("SELECT ciphertext FROM records")
                .fetch_one($pool)
                .await
                .expect("row");
            ct[20] ^= 1;
            sqlx::query("UPDATE records SET ciphertext = ?")
                .bind(ct)
                .execute($pool)
                .await
                .expect("update");
        }};
    }
    match &t.app.pool {
        DbPool::Sqlite(p) => flip!(p),
        DbPool::MySql(p) => flip!(p),
    }
    let r = t.get("/v1/profiles/a@b.c", Some(&tok)).await;
    let msg = r.assert_error(500, "internal");
    assert!(msg.contains("integrity"), "{msg}");
    assert!(!String::from_utf8_lossy(&r.body).contains("Ada"));
}

fn keyed_config(db: &TestDb, keks: &[(&str, &str)], active: &str, index: &str) -> Config {
    with_keks(test_config(db), keks, active, index)
}

async fn seed(config: Config, email: &str, name: &str) -> App {
    let app = App::build(config, Migrations::Run).await.expect("builds");
    let email = moocard::domain::email::Email::parse(email).expect("email");
    app.profiles
        .set_display_name(&email, Some(name))
        .await
        .expect("write");
    app
}

#[tokio::test]
async fn a_wrong_kek_is_refused_at_startup() {
    let db = TestDb::new().await;
    let index = generate_b64();
    let right = generate_b64();
    seed(
        keyed_config(&db, &[("k1", &right)], "k1", &index),
        "a@b.c",
        "Ada",
    )
    .await
    .pool
    .close()
    .await;

    let wrong = generate_b64();
    let err = App::build(
        keyed_config(&db, &[("k1", &wrong)], "k1", &index),
        Migrations::Run,
    )
    .await
    .err()
    .expect("refused")
    .to_string();
    assert!(err.contains("k1") && err.contains("integrity"), "{err}");

    let err = App::build(
        keyed_config(&db, &[("k2", &right)], "k2", &index),
        Migrations::Run,
    )
    .await
    .err()
    .expect("refused")
    .to_string();
    assert!(
        err.contains("\"k1\"") && err.contains("not configured"),
        "{err}"
    );
}

#[tokio::test]
async fn rotation_rewraps_everything_online_and_old_key_can_go() {
    let db = TestDb::new().await;
    let index = generate_b64();
    let (k1, k2) = (generate_b64(), generate_b64());
    let old = seed(
        keyed_config(&db, &[("k1", &k1)], "k1", &index),
        "a@b.c",
        "Ada",
    )
    .await;
    for i in 0..30 {
        let email = moocard::domain::email::Email::parse(&format!("user{i}@b.c")).expect("email");
        old.profiles
            .set_display_name(&email, Some("Someone"))
            .await
            .expect("write");
    }

    let both = App::build(
        keyed_config(&db, &[("k1", &k1), ("k2", &k2)], "k2", &index),
        Migrations::Run,
    )
    .await
    .expect("both keys");
    // Rotate in small batches while the old-key server keeps writing (it still wraps
    // under k1, as a not-yet-reconfigured node would).
    let mut rounds = 0;
    loop {
        let (seen, _) = both.profiles.rotate_batch(7).await.expect("rotate");
        rounds += 1;
        if rounds == 2 {
            let email = moocard::domain::email::Email::parse("late@b.c").expect("email");
            old.profiles
                .set_display_name(&email, Some("Late"))
                .await
                .expect("write");
        }
        if seen == 0 {
            break;
        }
        assert!(rounds < 100, "rotation terminates");
    }
    assert!(rounds > 3, "ran in batches");
    assert!(both
        .profiles
        .store()
        .rows_to_rewrap("k2", 10)
        .await
        .expect("query")
        .is_empty());

    let new_only = App::build(
        keyed_config(&db, &[("k2", &k2)], "k2", &index),
        Migrations::Run,
    )
    .await
    .expect("old key no longer needed");
    for email in ["a@b.c", "late@b.c", "user29@b.c"] {
        let email = moocard::domain::email::Email::parse(email).expect("email");
        let view = new_only.profiles.get(&email).await.expect("reads");
        assert!(view.display_name.is_some());
    }
}
