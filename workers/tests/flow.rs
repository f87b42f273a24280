//! Upload to served avatar, end to end: the real router, a real worker pool (a second
//! `App`, as a separate worker node would be) and a real database (SQLite, or MySQL when
//! `MOOCARD_TEST_MYSQL_URL` is set).

#[path = "../../tests/support/mod.rs"]
mod support;
#[path = "worker_pool/mod.rs"]
mod worker_pool;

use std::time::{Duration, Instant};

use axum::http::Method;
use serde_json::{json, Value};
use support::{fixture, TestApp};
use worker_pool::Pool;

async fn put(t: &TestApp, email: &str, file: &str, query: &str) -> support::TestResponse {
    let tok = t.token(email);
    let uri = format!("/v1/profiles/{email}/avatar{query}");
    t.call(
        Method::PUT,
        &uri,
        Some(&tok),
        Some(("image/jpeg", fixture(&format!("images/{file}")))),
    )
    .await
}

async fn wait_for(t: &TestApp, email: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let tok = t.token(email);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = t
            .get(&format!("/v1/profiles/{email}/avatar"), Some(&tok))
            .await
            .json();
        if pred(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out; last status {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn settled(v: &Value) -> bool {
    v["state"] == "ready" || v["state"] == "failed"
}

async fn image(t: &TestApp, url: &str) -> (String, Vec<u8>) {
    let id = url.trim_start_matches("/images/");
    let img = t
        .app
        .profiles
        .store()
        .get_image(id)
        .await
        .expect("get")
        .expect("stored");
    (img.content_type, img.bytes)
}

#[tokio::test]
async fn upload_becomes_ready_with_every_size() {
    let t = TestApp::new().await;
    let pool = Pool::start(&t.app.config, 2).await;
    let r = put(&t, "ada@example.org", "photo-hubble.jpg", "").await;
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.header("location"),
        Some("/v1/profiles/ada@example.org/avatar")
    );
    let accepted = r.json();
    assert_eq!(accepted["state"], "queued");
    let job = accepted["job"].as_str().expect("job id").to_owned();

    let status = wait_for(&t, "ada@example.org", settled).await;
    assert_eq!(status["state"], "ready", "{status}");
    assert_eq!(status["error"], json!(null));
    assert_eq!(status["job"], job.as_str());
    assert!(status["updated_at"].as_str().expect("time").ends_with('Z'));
    let urls = status["urls"].as_object().expect("urls");
    assert_eq!(urls.len(), 5);
    for size in [32u32, 64, 128, 256, 512] {
        let (ct, bytes) = image(&t, urls[&size.to_string()].as_str().expect("url")).await;
        assert_eq!(ct, "image/jpeg");
        let decoded = image::load_from_memory(&bytes).expect("decodes");
        assert_eq!((decoded.width(), decoded.height()), (size, size));
    }
    // Served through the public routes: by content id and by Gravatar hash.
    let r = t.get(urls["32"].as_str().expect("url"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("image/jpeg"));
    assert_eq!(
        r.header("cache-control"),
        Some("public, max-age=31536000, immutable")
    );
    let md5 = "5bfcf2d8e394674550332640d72db509"; // md5("ada@example.org")
    let r = t.get(&format!("/avatar/{md5}?s=100"), None).await;
    assert_eq!(r.status, 200);
    let served = image::load_from_memory(&r.body).expect("decodes");
    assert_eq!(served.width(), 128, "100 snaps up to 128");
    // The avatar itself, not a default graphic of the same size.
    let (_, at_128) = image(&t, urls["128"].as_str().expect("url")).await;
    assert!(
        r.body[..] == at_128[..],
        "/avatar serves the uploaded picture"
    );
    // The profile shows the same status, and the original is gone.
    let profile = t
        .get(
            "/v1/profiles/ada@example.org",
            Some(&t.token("ada@example.org")),
        )
        .await
        .json();
    assert_eq!(profile["avatar"]["urls"], status["urls"]);
    assert!(
        t.app
            .profiles
            .store()
            .get_upload(&job)
            .await
            .expect("get")
            .is_none(),
        "original not kept"
    );
    pool.stop().await;
}

#[tokio::test]
async fn transparency_gives_png_and_crop_is_applied() {
    let t = TestApp::new().await;
    let pool = Pool::start(&t.app.config, 1).await;
    put(&t, "a@b.c", "alpha.png", "").await;
    let status = wait_for(&t, "a@b.c", settled).await;
    assert_eq!(status["state"], "ready", "{status}");
    let (ct, _) = image(&t, status["urls"]["64"].as_str().expect("url")).await;
    assert_eq!(ct, "image/png");

    // A crop outside the oriented image is refused at upload (tests/api/uploads.rs).
    put(&t, "a@b.c", "photo-hubble.jpg", "?crop=0,0,10,10000000")
        .await
        .assert_error(422, "invalid_crop");
    put(&t, "a@b.c", "photo-hubble.jpg", "?crop=nope")
        .await
        .assert_error(400, "bad_request");
    pool.stop().await;
}

#[tokio::test]
async fn a_bad_image_fails_and_the_previous_avatar_stays() {
    let t = TestApp::new().await;
    let pool = Pool::start(&t.app.config, 1).await;
    put(&t, "a@b.c", "orient-6-le.jpg", "").await;
    let first = wait_for(&t, "a@b.c", settled).await;
    assert_eq!(first["state"], "ready");
    put(&t, "a@b.c", "truncated.jpg", "").await;
    let failed = wait_for(&t, "a@b.c", |v| v["state"] == "failed").await;
    assert_eq!(failed["error"]["code"], "undecodable_image");
    assert!(!failed["error"]["message"]
        .as_str()
        .expect("message")
        .is_empty());
    assert_eq!(
        failed["urls"], first["urls"],
        "previous avatar still served"
    );
    pool.stop().await;
}

#[tokio::test]
async fn cheap_checks_answer_synchronously() {
    let t = TestApp::with_config(|c| c.limits.max_upload_bytes = 50_000).await;
    let msg = put(&t, "a@b.c", "photo-hubble.jpg", "")
        .await
        .assert_error(413, "payload_too_large");
    assert!(msg.contains("50000"), "{msg}");
    put(&t, "a@b.c", "not-an-image.txt", "")
        .await
        .assert_error(415, "unsupported_media_type");
    let msg = put(&t, "a@b.c", "huge-dims.jpg", "")
        .await
        .assert_error(422, "image_too_large");
    assert!(msg.contains("16384"), "{msg}");
    put(&t, "a@b.c", "bomb-256mp.png", "")
        .await
        .assert_error(422, "image_too_large");
    let tok = t.token("a@b.c");
    let r = t
        .call(Method::PUT, "/v1/profiles/a@b.c/avatar", Some(&tok), None)
        .await;
    r.assert_error(400, "bad_request");
    // Nothing was queued or staged by the refusals.
    assert_eq!(t.app.queue.depth().await.expect("depth"), 0);
    let v = t.get("/v1/profiles/a@b.c/avatar", Some(&tok)).await.json();
    assert_eq!(v["state"], "none");
}

#[tokio::test]
async fn rate_limit_and_queue_limit() {
    let t = TestApp::with_config(|c| {
        c.queue.uploads_per_window = 2;
        c.queue.max_depth = 3;
    })
    .await;
    assert_eq!(put(&t, "a@b.c", "grey.jpg", "").await.status, 202);
    assert_eq!(put(&t, "a@b.c", "grey.jpg", "").await.status, 202);
    let r = put(&t, "a@b.c", "grey.jpg", "").await;
    let msg = r.assert_error(429, "rate_limited");
    assert!(msg.contains('2'), "{msg}");
    assert!(
        r.header("retry-after")
            .expect("Retry-After")
            .parse::<u64>()
            .expect("seconds")
            >= 1
    );
    assert_eq!(put(&t, "b@b.c", "grey.jpg", "").await.status, 202);
    let msg = put(&t, "c@b.c", "grey.jpg", "")
        .await
        .assert_error(503, "unavailable");
    assert!(msg.contains("limit 3"), "{msg}");
}

#[tokio::test]
async fn deleting_the_avatar_and_the_profile() {
    let t = TestApp::new().await;
    let pool = Pool::start(&t.app.config, 1).await;
    put(&t, "a@b.c", "grey.jpg", "").await;
    let ready = wait_for(&t, "a@b.c", settled).await;
    let url = ready["urls"]["32"].as_str().expect("url").to_owned();
    let tok = t.token("a@b.c");
    assert_eq!(
        t.call(
            Method::DELETE,
            "/v1/profiles/a@b.c/avatar",
            Some(&tok),
            None
        )
        .await
        .status,
        204
    );
    let v = t.get("/v1/profiles/a@b.c/avatar", Some(&tok)).await.json();
    assert_eq!(
        (v["state"].clone(), v["urls"].clone()),
        (json!("none"), json!(null))
    );
    // Cleanup removes replaced images once they are old enough.
    moocard::maintenance::cleanup_once(&t.app.profiles, Duration::ZERO).await;
    assert!(t
        .app
        .profiles
        .store()
        .get_image(url.trim_start_matches("/images/"))
        .await
        .expect("get")
        .is_none());

    put(&t, "a@b.c", "grey.jpg", "").await;
    let ready = wait_for(&t, "a@b.c", settled).await;
    let url = ready["urls"]["32"].as_str().expect("url").to_owned();
    assert_eq!(
        t.call(Method::DELETE, "/v1/profiles/a@b.c", Some(&tok), None)
            .await
            .status,
        204
    );
    assert!(t
        .app
        .profiles
        .store()
        .get_image(url.trim_start_matches("/images/"))
        .await
        .expect("get")
        .is_none());
    pool.stop().await;
}

/// 200 uploads from 50 owners at once: every owner ends `ready` with its last upload.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uploads_last_one_wins() {
    let t = TestApp::with_config(|c| c.queue.uploads_per_window = 1000).await;
    let pool = Pool::start(&t.app.config, 4).await;
    let files = [
        "orient-1-le.jpg",
        "grey.jpg",
        "orient-3-be.jpg",
        "palette.png",
    ];
    let mut owners = Vec::new();
    for i in 0..50 {
        let email = format!("user{i}@example.org");
        let router = t.router.clone();
        let tok = t.token(&email);
        owners.push(tokio::spawn(async move {
            use tower::ServiceExt as _;
            let mut last = String::new();
            for file in files {
                let req = axum::http::Request::builder()
                    .method("PUT")
                    .uri(format!("/v1/profiles/{email}/avatar"))
                    .header("authorization", format!("Bearer {tok}"))
                    .body(axum::body::Body::from(fixture(&format!("images/{file}"))))
                    .expect("request");
                let res = router.clone().oneshot(req).await.expect("infallible");
                let status = res.status();
                let body = http_body_util::BodyExt::collect(res.into_body())
                    .await
                    .expect("body")
                    .to_bytes();
                assert_eq!(status, 202, "{}", String::from_utf8_lossy(&body));
                let v: Value = serde_json::from_slice(&body).expect("json");
                last = v["job"].as_str().expect("job").to_owned();
            }
            (email, last)
        }));
    }
    for owner in owners {
        let (email, last_job) = owner.await.expect("join");
        let v = wait_for(&t, &email, |v| settled(v) && v["job"] == last_job.as_str()).await;
        assert_eq!(v["state"], "ready", "{email}: {v}");
        // The last upload is a PNG with no transparency: served as JPEG from generation 4.
        let (ct, _) = image(&t, v["urls"]["32"].as_str().expect("url")).await;
        assert_eq!(ct, "image/jpeg");
    }
    pool.stop().await;
    // Nothing left queued or running.
    let counts = t.app.queue.counts().await.expect("counts");
    assert_eq!(
        counts.pending + counts.queued + counts.running,
        0,
        "{counts:?}"
    );
}

/// A job killed without its handler recording a reason (its worker kept dying) still ends
/// `failed` for the user, not `queued` forever.
#[tokio::test]
async fn killed_jobs_are_reconciled_to_failed() {
    let t = TestApp::new().await;
    assert_eq!(put(&t, "a@b.c", "grey.jpg", "").await.status, 202);
    let kill = |now: &str| format!("UPDATE jobs SET status = 'Killed', done_at = {now}");
    match &t.app.pool {
        moocard::db::DbPool::Sqlite(p) => {
            sqlx::query(&kill("CAST(strftime('%s','now') AS INTEGER)"))
                .execute(p)
                .await
                .expect("kill");
        }
        moocard::db::DbPool::MySql(p) => {
            sqlx::query(&kill("NOW()")).execute(p).await.expect("kill");
        }
    }
    let marked =
        moocard::maintenance::reconcile_killed(&t.app.uploads, Duration::from_secs(3600)).await;
    assert_eq!(marked, 1);
    let v = t
        .get("/v1/profiles/a@b.c/avatar", Some(&t.token("a@b.c")))
        .await
        .json();
    assert_eq!(v["state"], "failed", "{v}");
    assert_eq!(v["error"]["code"], "unavailable");
    // Idempotent, and it never touches a finished record.
    moocard::maintenance::reconcile_killed(&t.app.uploads, Duration::from_secs(3600)).await;
    assert_eq!(
        t.get("/v1/profiles/a@b.c/avatar", Some(&t.token("a@b.c")))
            .await
            .json(),
        v
    );
}

/// An upload superseded while its job runs ends that job quietly as done (issue 14), not
/// `Killed` with "the uploaded file is gone": the newer upload deleted its original.
#[tokio::test]
async fn a_superseded_job_ends_done() {
    let t = TestApp::new().await;
    let pool = Pool::start(&t.app.config, 1).await;
    put(&t, "a@b.c", "photo-hubble.jpg", "").await;
    wait_for(&t, "a@b.c", |v| v["state"] != "queued").await;
    put(&t, "a@b.c", "grey.jpg", "").await;
    put(&t, "a@b.c", "orient-6-le.jpg", "").await;
    let v = wait_for(&t, "a@b.c", settled).await;
    assert_eq!(v["state"], "ready", "{v}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let c = t.app.queue.counts().await.expect("counts");
        if c.done + c.killed + c.failed == 3 {
            assert_eq!((c.done, c.killed, c.failed), (3, 0, 0), "{c:?}");
            break;
        }
        assert!(Instant::now() < deadline, "jobs did not finish: {c:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pool.stop().await;
}
