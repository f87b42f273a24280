//! Test harness shared by `tests/*` and `workers/tests/*` (included with `#[path]`).
//!
//! Every test gets a fresh database: a SQLite file in a temp dir, or, when
//! `MOOCARD_TEST_MYSQL_URL` is set (CI sets it), a uniquely named MySQL database that is
//! dropped afterwards. If that variable is set and the server is unreachable the test
//! fails loudly; it never silently falls back to SQLite.
#![allow(dead_code)]

use axum::{
    body::Body,
    http::{HeaderMap, Method, Request, StatusCode},
};
use http_body_util::BodyExt as _;
use moocard::{
    config::{Config, KekConfig},
    http::HttpService,
    App, Migrations,
};
use tower::ServiceExt as _;

/// The env var naming a MySQL/MariaDB server for the MySQL runs.
pub const MYSQL_ENV: &str = "MOOCARD_TEST_MYSQL_URL";

/// A throw-away database.
pub struct TestDb {
    /// URL of the fresh database.
    pub url: String,
    mysql: Option<(String, String)>,
    /// Holds the SQLite file (and data dir) alive.
    pub dir: tempfile::TempDir,
}

impl TestDb {
    /// MySQL when `MOOCARD_TEST_MYSQL_URL` is set, else SQLite.
    pub async fn new() -> Self {
        match std::env::var(MYSQL_ENV) {
            Ok(url) if !url.is_empty() => Self::mysql_at(&url).await,
            _ => Self::sqlite(),
        }
    }

    /// A SQLite file in a temp dir.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/moocard.db", dir.path().display());
        Self {
            url,
            mysql: None,
            dir,
        }
    }

    /// A fresh database on the server at `MOOCARD_TEST_MYSQL_URL`, if set.
    pub async fn mysql() -> Option<Self> {
        match std::env::var(MYSQL_ENV) {
            Ok(url) if !url.is_empty() => Some(Self::mysql_at(&url).await),
            _ => None,
        }
    }

    async fn mysql_at(server_url: &str) -> Self {
        use sqlx::Connection as _;
        let mut conn = sqlx::MySqlConnection::connect(server_url)
            .await
            .unwrap_or_else(|e| {
                panic!("{MYSQL_ENV} is set ({server_url}) but the server is unreachable: {e}")
            });
        let name = format!("moocard_t_{}", moocard::domain::ids::random_id());
        sqlx::query(&format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let base = server_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(server_url);
        let dir = tempfile::tempdir().expect("tempdir");
        Self {
            url: format!("{base}/{name}"),
            mysql: Some((server_url.to_owned(), name)),
            dir,
        }
    }

    /// Whether this is a MySQL database.
    pub fn is_mysql(&self) -> bool {
        self.mysql.is_some()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((server, name)) = self.mysql.take() else {
            return;
        };
        // Drop runs outside async context; use a private runtime on a thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                use sqlx::Connection as _;
                if let Ok(mut conn) = sqlx::MySqlConnection::connect(&server).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// A configuration over a test database, with data (keys, dev signing key) in its temp dir.
pub fn test_config(db: &TestDb) -> Config {
    let mut config = Config {
        data_dir: db.dir.path().to_owned(),
        ..Config::default()
    };
    config.database.url = db.url.clone();
    config.database.max_connections = 8;
    // Audit lines would go to stdout past the test harness's capture.
    config.audit.output = "off".into();
    config.validate().expect("valid test config")
}

/// `c` with these key-encryption keys (id, base64 key), the active one and an index secret.
pub fn with_keks(mut c: Config, keks: &[(&str, &str)], active: &str, index: &str) -> Config {
    c.keys.keks = keks
        .iter()
        .map(|(id, key)| KekConfig {
            id: (*id).into(),
            key: (*key).into(),
        })
        .collect();
    c.keys.active_kek = active.into();
    c.keys.index_secret = index.into();
    c
}

/// The app over a fresh database, driven through its real router.
pub struct TestApp {
    /// The built app.
    pub app: App,
    /// Every route, as `moocard::serve` runs them.
    pub router: HttpService,
    /// The database (dropped with the app).
    pub db: TestDb,
}

/// A response, read whole.
pub struct TestResponse {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl TestResponse {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an error body `{code, message}` with this status and code.
    pub fn assert_error(&self, status: u16, code: &str) -> String {
        assert_eq!(
            self.status.as_u16(),
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        let v = self.json();
        assert_eq!(v["code"], code, "body: {v}");
        let message = v["message"].as_str().expect("message").to_owned();
        assert!(!message.is_empty());
        message
    }
}

impl TestApp {
    /// A fresh app with the default test config.
    pub async fn new() -> Self {
        Self::with_config(|_| {}).await
    }

    /// A fresh app with a tweaked config.
    pub async fn with_config(tweak: impl FnOnce(&mut Config)) -> Self {
        let db = TestDb::new().await;
        let mut config = test_config(&db);
        tweak(&mut config);
        let app = App::build(config, Migrations::Run)
            .await
            .expect("app builds");
        let router = HttpService::new(app.state());
        Self { app, router, db }
    }

    /// A valid 1-hour dev token for `email`.
    pub fn token(&self, email: &str) -> String {
        self.app
            .dev
            .as_ref()
            .expect("dev mode")
            .token(email, 3600, true)
            .expect("token")
    }

    /// Sends a request through the router.
    pub async fn send(&self, req: Request<Body>) -> TestResponse {
        send_to(&self.router, req).await
    }

    /// A request with an optional bearer token and body.
    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> TestResponse {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some((content_type, bytes)) => req
                .header("content-type", content_type)
                .body(Body::from(bytes)),
            None => req.body(Body::empty()),
        };
        self.send(req.expect("request")).await
    }

    /// GET with a token.
    pub async fn get(&self, uri: &str, token: Option<&str>) -> TestResponse {
        self.call(Method::GET, uri, token, None).await
    }

    /// PATCH a JSON body.
    pub async fn patch_json(
        &self,
        uri: &str,
        token: &str,
        body: serde_json::Value,
    ) -> TestResponse {
        self.call(
            Method::PATCH,
            uri,
            Some(token),
            Some(("application/json", body.to_string().into_bytes())),
        )
        .await
    }
}

/// Sends a request through `router` (any node's service) and reads the whole answer.
pub async fn send_to(router: &HttpService, req: Request<Body>) -> TestResponse {
    let res = router.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let headers = res.headers().clone();
    let body = res
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    TestResponse {
        status,
        headers,
        body,
    }
}

/// Reads a file from `fixtures/`.
pub fn fixture(path: &str) -> Vec<u8> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // workers/tests include this file too; fixtures live at the workspace root.
    let base = if root.join("fixtures").exists() {
        root.to_owned()
    } else {
        root.join("..")
    };
    std::fs::read(base.join("fixtures").join(path))
        .unwrap_or_else(|e| panic!("fixture {path}: {e}"))
}
