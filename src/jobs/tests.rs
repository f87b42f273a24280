//! Unit tests of the queue contract on a real SQLite file (MySQL runs in workers/tests).

use std::time::Duration;

use super::*;
use crate::db::DbOptions;

fn job(n: i64) -> ProcessAvatar {
    ProcessAvatar {
        upload_id: format!("{n:032x}"),
        owner: "ab".repeat(20),
        generation: n,
        crop: None,
        rederive: false,
    }
}

async fn sqlite_queue(dir: &tempfile::TempDir) -> JobQueue {
    let url = format!("sqlite://{}", dir.path().join("q.db").display());
    let pool = DbPool::connect(&url, &DbOptions::default())
        .await
        .expect("connect sqlite");
    JobQueue::new(pool, QueueConfig::default())
}

#[test]
fn payload_is_stable_json_and_crop_is_optional() {
    let j = job(7);
    let json = serde_json::to_value(&j).expect("encode");
    assert_eq!(
        json,
        serde_json::json!({"upload_id": format!("{:032x}", 7), "owner": "ab".repeat(20),
                           "generation": 7, "crop": null})
    );
    // Old producers that did not send `crop` still decode.
    let old: ProcessAvatar =
        serde_json::from_str(r#"{"upload_id":"aa","owner":"bb","generation":1}"#).expect("decode");
    assert_eq!(old.crop, None);
}

#[test]
fn retry_delay_doubles_and_caps() {
    let cfg = QueueConfig {
        retry_base: Duration::from_secs(2),
        retry_max: Duration::from_secs(10),
        ..QueueConfig::default()
    };
    assert_eq!(retry_delay(&cfg, 1), Duration::from_secs(2));
    assert_eq!(retry_delay(&cfg, 2), Duration::from_secs(4));
    assert_eq!(retry_delay(&cfg, 3), Duration::from_secs(8));
    assert_eq!(retry_delay(&cfg, 4), Duration::from_secs(10));
    assert_eq!(retry_delay(&cfg, 400), Duration::from_secs(10));
}

#[test]
fn mysql_migrations_are_mariadb_compatible_with_original_checksums() {
    let stock = apalis_mysql::MySqlStorage::migrations();
    let patched = migrate::patched_mysql_migrator();
    assert_eq!(stock.migrations.len(), patched.migrations.len());
    assert!(stock
        .migrations
        .iter()
        .any(|m| m.sql.contains("utf8mb4_0900_ai_ci")));
    for (a, b) in stock.migrations.iter().zip(patched.migrations.iter()) {
        assert!(!b.sql.contains("utf8mb4_0900_ai_ci"), "{}", b.description);
        assert_eq!(a.checksum, b.checksum);
        assert_eq!(a.version, b.version);
    }
}

#[tokio::test]
async fn sqlite_enqueue_depth_counts_and_reaper() {
    let dir = tempfile::tempdir().expect("tempdir");
    let q = sqlite_queue(&dir).await;
    q.migrate().await.expect("migrate");
    q.migrate().await.expect("migrate is idempotent");
    q.ping().await.expect("ping");

    let a = q.enqueue(job(1)).await.expect("enqueue");
    let b = q.enqueue(job(2)).await.expect("enqueue");
    assert_ne!(a, b);
    assert_eq!(a.0.len(), 26, "ULID");
    assert_eq!(q.depth().await.expect("depth"), 2);
    let DbPool::Sqlite(pool) = q.pool() else {
        unreachable!()
    };
    let payload: Vec<u8> = sqlx::query_scalar("SELECT job FROM jobs WHERE id = ?")
        .bind(&a.0)
        .fetch_one(pool)
        .await
        .expect("row");
    assert_eq!(
        serde_json::from_slice::<ProcessAvatar>(&payload).expect("json"),
        job(1)
    );

    // A dead worker (heartbeat an hour old) holds `a` Running and `b` Queued.
    sqlx::query(
        "INSERT INTO workers (id, worker_type, storage_name, layers, last_seen) \
         VALUES ('dead', ?, 'SqliteStorage', '', strftime('%s','now') - 3600)",
    )
    .bind(AVATAR_QUEUE)
    .execute(pool)
    .await
    .expect("worker");
    for (id, status) in [(&a.0, "Running"), (&b.0, "Queued")] {
        sqlx::query("UPDATE jobs SET status = ?, lock_by = 'dead' WHERE id = ?")
            .bind(status)
            .bind(id)
            .execute(pool)
            .await
            .expect("lock");
    }
    let c = q.counts().await.expect("counts");
    assert_eq!((c.pending, c.queued, c.running), (0, 1, 1));

    assert_eq!(q.reap_orphans().await.expect("reap"), 2);
    let rows: Vec<(String, String, i64, Option<String>)> =
        sqlx::query_as("SELECT id, status, attempts, lock_by FROM jobs ORDER BY id")
            .fetch_all(pool)
            .await
            .expect("rows");
    for (id, status, attempts, lock_by) in rows {
        assert_eq!(status, "Pending");
        assert_eq!(lock_by, None);
        // Only the job that was running used up an attempt.
        assert_eq!(attempts, i64::from(id == a.0), "{id}");
    }
    assert_eq!(q.reap_orphans().await.expect("reap again"), 0);

    // A live worker's jobs are left alone.
    sqlx::query(
        "INSERT INTO workers (id, worker_type, storage_name, layers, last_seen) \
         VALUES ('live', ?, 'SqliteStorage', '', strftime('%s','now'))",
    )
    .bind(AVATAR_QUEUE)
    .execute(pool)
    .await
    .expect("worker");
    sqlx::query("UPDATE jobs SET status = 'Running', lock_by = 'live' WHERE id = ?")
        .bind(&a.0)
        .execute(pool)
        .await
        .expect("lock");
    assert_eq!(q.reap_orphans().await.expect("reap live"), 0);

    // The last attempt lost to a dead worker kills the job instead of looping forever.
    q.retire_worker("live").await.expect("retire");
    sqlx::query("UPDATE jobs SET attempts = max_attempts - 1 WHERE id = ?")
        .bind(&a.0)
        .execute(pool)
        .await
        .expect("attempts");
    assert_eq!(q.reap_orphans().await.expect("reap"), 1);
    assert_eq!(q.state(&a).await.expect("state"), Some(JobState::Killed));
    assert_eq!(q.state(&b).await.expect("state"), Some(JobState::Pending));
    assert_eq!(q.state(&JobId("nope".into())).await.expect("state"), None);
    let c = q.counts().await.expect("counts");
    assert_eq!((c.pending, c.killed), (1, 1));
    assert_eq!(q.depth().await.expect("depth"), 1);
}

/// apalis-sqlite's `queries/backend/fetch_next.sql`, which every fetch and every poll of an
/// idle worker runs, read from the copy of the crate Cargo.lock resolves (the crate does
/// not export the text): an upgrade that changes the query fails the test below instead of
/// silently bypassing `moocard_jobs_fetchable`.
fn apalis_fetch_next_sql() -> String {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"))
        .expect("Cargo.lock");
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"apalis-sqlite\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .expect("apalis-sqlite in Cargo.lock")
        .trim_matches('"')
        .to_owned();
    let home = std::env::var("CARGO_HOME")
        .unwrap_or_else(|_| format!("{}/.cargo", std::env::var("HOME").expect("HOME")));
    let crate_dir = format!("apalis-sqlite-{version}");
    std::fs::read_dir(format!("{home}/registry/src"))
        .expect("cargo registry sources")
        .flatten()
        .map(|index| {
            index
                .path()
                .join(&crate_dir)
                .join("queries/backend/fetch_next.sql")
        })
        .find_map(|sql| std::fs::read_to_string(sql).ok())
        .expect("apalis-sqlite's fetch_next.sql in the registry sources")
}

async fn plan(p: &sqlx::SqlitePool, sql: &str, binds: &[&str]) -> Vec<String> {
    use sqlx::Row as _;
    let sql = format!("EXPLAIN QUERY PLAN {sql}");
    let mut q = sqlx::query(&sql);
    for b in binds {
        q = q.bind(*b);
    }
    q.fetch_all(p)
        .await
        .expect("explain")
        .iter()
        .map(|r| r.get::<String, _>(3))
        .collect()
}

#[tokio::test]
async fn sqlite_fetch_and_depth_stay_on_indexes_whatever_retention_keeps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let q = sqlite_queue(&dir).await;
    q.migrate().await.expect("migrate");
    let DbPool::Sqlite(p) = q.pool() else {
        unreachable!("sqlite")
    };
    // Finished jobs as retention keeps them, and a few live ones.
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) \
         INSERT INTO Jobs (job, id, job_type, status, attempts, max_attempts, done_at) \
         SELECT X'7B7D', 'done-' || i, ?, 'Done', 1, 3, 1 FROM n",
    )
    .bind(AVATAR_QUEUE)
    .execute(p)
    .await
    .expect("finished jobs");
    for n in 1..=3 {
        q.enqueue(job(n)).await.expect("enqueue");
    }
    let fetch_sql = apalis_fetch_next_sql();
    // Before and after the planner has statistics (`ANALYZE`, or `PRAGMA optimize`).
    for analyzed in [false, true] {
        if analyzed {
            sqlx::query("ANALYZE").execute(p).await.expect("analyze");
        }
        let depth = plan(p, sql::DEPTH, &[AVATAR_QUEUE, AVATAR_QUEUE]).await;
        assert!(
            depth.iter().all(|d| !d.starts_with("SCAN jobs")),
            "analyzed={analyzed}: {depth:?}"
        );
        let fetch = plan(p, &fetch_sql, &["w", AVATAR_QUEUE, "1"]).await;
        assert!(
            fetch.iter().any(|d| d.contains("moocard_jobs_fetchable")),
            "analyzed={analyzed}: {fetch:?}"
        );
    }
    assert_eq!(q.depth().await.expect("depth"), 3);
}
