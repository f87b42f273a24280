//! Public reads (API.md §Public reads) through the real router over a temp SQLite file:
//! lookups by every kind of hash, size snapping, defaults, conditional GETs, headers,
//! `/images/{id}` and cache invalidation. This file holds the harness; the cases live in
//! the modules below.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] fns fail loudly on purpose"
)]

mod changes;
mod fallbacks;
mod outage;
mod reads;

use std::collections::BTreeMap;

use axum::{
    body::Body,
    http::{header, HeaderMap, Method, Request, StatusCode},
    Router,
};
use http_body_util::BodyExt as _;
use moocard::{
    config::Config,
    domain::{
        avatar::{AvatarRecord, AvatarState, LiveAvatar, VariantRef},
        email::Email,
        ids::{random_id, AvatarHash, PublicId},
        record::RecordKey,
    },
    http::{router, AppState, HttpService},
    profiles::{now_ms, now_rfc3339},
    store::{NewImage, Staged},
    App, Migrations,
};
use tower::ServiceExt as _;

struct TestApp {
    _dir: tempfile::TempDir,
    app: App,
    state: AppState,
    /// What `moocard::serve` runs.
    service: HttpService,
    /// The axum router alone (no direct dispatch of public reads), to compare with.
    router: Router,
}

async fn test_app(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = Config::default();
    tweak(&mut config);
    test_app_in(config).await
}

/// An app over `config`, in a fresh data directory unless `config.data_dir` names one
/// (two apps over one directory are two nodes over one database).
async fn test_app_in(mut config: Config) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    if config.data_dir.as_os_str().is_empty() {
        config.data_dir = dir.path().to_path_buf();
    }
    // Generous, so a loaded test machine does not turn slow reads into fallbacks; the
    // fallback tests close the pool instead.
    if config.avatars.store_timeout_ms == Config::default().avatars.store_timeout_ms {
        config.avatars.store_timeout_ms = 10_000;
    }
    let app = App::build(config.validate().unwrap(), Migrations::Run)
        .await
        .unwrap();
    let state = app.state();
    TestApp {
        _dir: dir,
        service: HttpService::new(state.clone()),
        router: router(state.clone()),
        state,
        app,
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl TestApp {
    async fn call(&self, method: Method, uri: &str, inm: Option<&str>) -> Answer {
        self.call_on(self.service.clone(), method, uri, inm).await
    }

    async fn call_on<S>(&self, service: S, method: Method, uri: &str, inm: Option<&str>) -> Answer
    where
        S: tower::Service<Request<Body>, Response = axum::response::Response>,
        S::Error: std::fmt::Debug,
    {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(tag) = inm {
            req = req.header(header::IF_NONE_MATCH, tag);
        }
        let res = service
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, uri: &str) -> Answer {
        self.call(Method::GET, uri, None).await
    }

    /// Stores one JPEG-labelled variant per size (bytes `"<tag>-<size>"`) and makes them
    /// the live set, as a worker's commit would. Returns size -> content id.
    async fn make_live(&self, email: &Email, tag: &str) -> BTreeMap<u32, String> {
        let profiles = &self.app.profiles;
        let owner = profiles.owner(email);
        let (rec, _) = profiles
            .read::<AvatarRecord>(&owner, RecordKey::Avatar)
            .await
            .unwrap()
            .unwrap_or_default();
        let generation = rec.generation + 1;
        let images: Vec<NewImage> = [32, 64, 128, 256, 512]
            .into_iter()
            .map(|size| NewImage {
                id: random_id(),
                owner,
                generation,
                size,
                content_type: "image/jpeg".into(),
                bytes: format!("{tag}-{size}").into_bytes(),
            })
            .collect();
        profiles
            .store()
            .put_images(&images, now_ms())
            .await
            .unwrap();
        let variants: BTreeMap<u32, VariantRef> =
            images.iter().map(|i| (i.size, i.variant_ref())).collect();
        self.set_current(
            email,
            Some(LiveAvatar {
                generation,
                variants: variants.clone(),
                updated_at: now_rfc3339(),
                formats: Default::default(),
                made_by: None,
            }),
            AvatarState::Ready,
        )
        .await;
        // Written behind the handlers' back: tell this node's filter of known aliases,
        // as the handlers do (other nodes learn it from the alias log).
        self.state
            .avatar_cache
            .learn_email(&self.app.profiles, email);
        variants.into_iter().map(|(s, v)| (s, v.id)).collect()
    }

    /// Sets the avatar record and, in the same transaction, which images are live (only
    /// live images are served at `/images/{id}`), as a worker's commit does.
    async fn set_current(&self, email: &Email, current: Option<LiveAvatar>, state: AvatarState) {
        let owner = self.app.profiles.owner(email);
        // The record (and the owner's aliases) must exist before the commit.
        self.app
            .profiles
            .update::<AvatarRecord, _>(Some(email), &owner, RecordKey::Avatar, |rec| Ok(Some(rec)))
            .await
            .unwrap();
        let live = current.as_ref().map(|c| c.generation);
        self.app
            .profiles
            .commit_avatar(&owner, &Staged::default(), |mut rec| {
                rec.generation += 1;
                rec.state = state;
                rec.current = current.clone();
                Some((rec, live))
            })
            .await
            .unwrap();
    }

    fn hashes(&self, email: &Email) -> [String; 3] {
        let [md5, sha, _] = AvatarHash::all_for(self.app.profiles.ids(), email);
        [
            hex::encode(md5.bytes()),
            hex::encode(sha.bytes()),
            PublicId::of(self.app.profiles.ids(), email).0,
        ]
    }
}

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

fn png_size(body: &[u8]) -> u32 {
    let reader = png::Decoder::new(body).read_info().unwrap();
    assert_eq!(reader.info().width, reader.info().height);
    reader.info().width
}

fn json_code(a: &Answer) -> String {
    let v: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    assert!(v["message"].is_string());
    v["code"].as_str().unwrap().to_owned()
}

const UNKNOWN: &str = "00000000000000000000000000000000";
