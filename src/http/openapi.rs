//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` attributes and
//! served at `GET /v1/openapi.json`.
//!
//! Error responses are completed here rather than on every handler: each 4xx/5xx gets the
//! `ErrorBody` schema (API.md §Errors says every error body is `{code, message}`), and every
//! bearer-protected operation gets the 401/403/503 answers the `Owner` extractor and the
//! store can produce, so the document cannot drift from the error model.

use std::sync::OnceLock;

use axum::{
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};
use utoipa::{
    openapi::{
        path::Operation,
        request_body::RequestBody,
        security::{Http, HttpAuthScheme, SecurityScheme},
        ContentBuilder, ObjectBuilder, Ref, RefOr, Required, ResponseBuilder, Type,
    },
    Modify, OpenApi,
};

use super::routes;

/// The whole API surface. New handlers are listed in `paths(...)`, their types in `schemas(...)`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "moocard",
        description = "Profile and avatar server for identity sign-in. The HTTP contract is API.md.",
        license(name = "MPL-2.0", identifier = "MPL-2.0")
    ),
    paths(
        routes::profiles::get_profile,
        routes::profiles::patch_profile,
        routes::profiles::delete_profile,
        routes::uploads::put_avatar,
        routes::uploads::get_avatar_status,
        routes::uploads::delete_avatar,
        routes::avatar::get_avatar,
        routes::images::get_image,
        routes::limits::get_limits,
        routes::ops::lbheartbeat,
        routes::ops::heartbeat,
        routes::ops::version,
        routes::ops::metrics,
        get_openapi,
    ),
    components(schemas(
        UploadAccepted,
        crate::http::ErrorBody,
        crate::ErrorCode,
        crate::profiles::ProfileView,
        crate::domain::avatar::AvatarStatus,
        crate::domain::avatar::AvatarState,
        crate::domain::avatar::AvatarError,
        crate::limits::ImageLimits,
        crate::http::routes::limits::PublishedLimits,
    )),
    modifiers(&Security, &UploadBody, &ErrorResponses),
    tags(
        (name = "profiles", description = "Owner endpoints (Bearer token)"),
        (name = "avatar", description = "Avatar upload, processing status and deletion (Bearer token)"),
        (name = "public", description = "Public avatar and image reads (no auth, CORS *)"),
        (name = "limits", description = "Upload limits, for checking a file before sending it"),
        (name = "ops", description = "Dockerflow health, version and metrics"),
    )
)]
pub struct ApiDoc;

/// The `bearer` scheme that `security(("bearer" = []))` on handlers refers to.
struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".into());
        http.description = Some(
            "An OpenID-Connect-style ID token (RS256, ES256 or EdDSA) whose `email` equals the \
             `{email}` in the path. In dev mode, `moocard token <email>` prints one."
                .into(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

/// The 202 answer to `PUT /v1/profiles/{email}/avatar` (API.md §Owner endpoints).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct UploadAccepted {
    /// The job id; also shown as `job` in the avatar status.
    pub job: String,
    /// Always `queued`.
    pub state: crate::domain::avatar::AvatarState,
}

/// The upload accepts four formats (by content) and answers `UploadAccepted`; the handler's
/// attribute can name only one content type, so the document is completed here.
struct UploadBody;

impl Modify for UploadBody {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let Some(put) = openapi
            .paths
            .paths
            .get_mut("/v1/profiles/{email}/avatar")
            .and_then(|item| item.put.as_mut())
        else {
            return;
        };
        let binary = || {
            ContentBuilder::new()
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .content_media_type("application/octet-stream"),
                ))
                .build()
        };
        let mut body = RequestBody::new();
        body.description = Some(
            "The image bytes. The format is read from the content (magic bytes), not from \
             Content-Type."
                .into(),
        );
        body.required = Some(Required::True);
        for ty in ["image/jpeg", "image/png", "image/gif", "image/webp"] {
            body.content.insert(ty.into(), binary());
        }
        put.request_body = Some(body);
        if let Some(RefOr::T(accepted)) = put.responses.responses.get_mut("202") {
            accepted.content.insert(
                "application/json".into(),
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("UploadAccepted")))
                    .build(),
            );
        }
    }
}

/// Fills in `ErrorBody` on error responses and the standard errors of protected operations.
struct ErrorResponses;

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.head,
                &mut item.options,
                &mut item.trace,
            ];
            for op in ops.into_iter().flatten() {
                complete_errors(op);
            }
        }
    }
}

fn complete_errors(op: &mut Operation) {
    let protected = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let responses = &mut op.responses.responses;
    if protected {
        for (status, text) in [
            ("400", "Malformed request (bad path, query or body)"),
            ("401", "Missing, malformed or expired bearer token"),
            ("403", "The token's email is not the `{email}` in the path"),
            ("503", "The database or queue is unavailable"),
        ] {
            responses
                .entry(status.into())
                .or_insert_with(|| RefOr::T(ResponseBuilder::new().description(text).build()));
        }
    }
    responses.entry("500".into()).or_insert_with(|| {
        RefOr::T(
            ResponseBuilder::new()
                .description("Unexpected server fault (generic message)")
                .build(),
        )
    });
    for (status, response) in responses.iter_mut() {
        let is_error = status.starts_with('4') || status.starts_with('5');
        if let (true, RefOr::T(response)) = (is_error, response) {
            // Every error body is `{code, message}`, whatever the handler declared.
            response.content.clear();
            response.content.insert(
                "application/json".into(),
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            );
        }
    }
}

/// The document as JSON, rendered once.
pub fn document() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").into();
        // Serializing plain structs into a String cannot fail; keep a valid document anyway.
        doc.to_pretty_json().unwrap_or_else(|_| "{}".into())
    })
}

/// `GET /v1/openapi.json`: this API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "ops",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
pub async fn get_openapi() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        document(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    #[test]
    fn document_lists_paths_and_error_bodies() {
        let doc: Value = serde_json::from_str(super::document()).expect("valid JSON");
        assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
        let paths = doc["paths"].as_object().expect("paths");
        for p in [
            "/v1/profiles/{email}",
            "/v1/profiles/{email}/avatar",
            "/v1/limits",
            "/__heartbeat__",
        ] {
            assert!(paths.contains_key(p), "{p} missing");
        }
        assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
        assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
        let mut errors = 0;
        for (path, item) in paths {
            for (method, op) in item.as_object().expect("item") {
                let Some(responses) = op.get("responses").and_then(Value::as_object) else {
                    continue;
                };
                for (status, r) in responses {
                    if status.starts_with('4') || status.starts_with('5') {
                        errors += 1;
                        assert_eq!(
                            r["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/ErrorBody",
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
        assert!(errors > 5);
        let put = &paths["/v1/profiles/{email}/avatar"]["put"];
        assert!(put["requestBody"]["content"]["image/webp"].is_object());
        assert_eq!(
            put["responses"]["202"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/UploadAccepted"
        );
        let get = &paths["/v1/profiles/{email}"]["get"];
        assert!(get["responses"]["401"].is_object());
        assert_eq!(get["security"][0]["bearer"], Value::Array(vec![]));
    }
}
