//! The console's files as the edge serves them: only files really inside the console
//! directory, precompressed copies as they are, and a page that reloads itself while the
//! console is still being built.

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::HeaderValue;
use std::path::PathBuf;
use std::sync::Arc;

/// Where the console comes from: its directory, and a progress file for while it is built.
#[derive(Debug, Clone)]
pub struct ConsoleFiles {
    pub dir: PathBuf,
    /// Shown on the "console is building" page while `dir` has no `index.html` yet
    /// (`cargo xtask dev` writes its build steps there).
    pub progress: Option<PathBuf>,
}

/// Serves only files that really are inside the console directory: a symlink in it that
/// points elsewhere (say, to a file with secrets) answers 404 instead of that file. The
/// directory is resolved per request, since a build may create or replace it while we run.
async fn inside_console(
    State(console): State<Arc<ConsoleFiles>>,
    req: Request,
    next: Next,
) -> Response {
    if !console.dir.join("index.html").is_file() {
        return building_page(console.progress.as_deref());
    }
    let Ok(root) = std::fs::canonicalize(&console.dir) else {
        return building_page(console.progress.as_deref());
    };
    let path = percent_encoding::percent_decode_str(req.uri().path()).decode_utf8_lossy();
    let candidate = root.join(path.trim_start_matches('/'));
    // The precompressed copies are served in the file's place, so they are checked too.
    let outside = ["", ".br", ".gz"].into_iter().any(|ext| {
        let mut file = candidate.clone().into_os_string();
        file.push(ext);
        std::fs::canonicalize(&file).is_ok_and(|real| !real.starts_with(&root))
    });
    if outside {
        tracing::warn!(path = %candidate.display(), "refused a console path that leads outside the console directory");
        return StatusCode::NOT_FOUND.into_response();
    }
    next.run(req).await
}

/// How often the "console is building" page reloads itself, in seconds.
pub const BUILDING_RELOAD_SECS: u32 = 3;

/// 503 (the console is not there yet) with a page that reloads itself every
/// [`BUILDING_RELOAD_SECS`] and shows the build's progress; the API answers meanwhile.
fn building_page(progress: Option<&std::path::Path>) -> Response {
    let steps = progress
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    let page = maud::html! {
        (maud::DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content=(BUILDING_RELOAD_SECS);
                title { "Tandem: console is building" }
            }
            body {
                h1 { "The console is building" }
                p {
                    "This page reloads itself every " (BUILDING_RELOAD_SECS) " s and becomes the \
                     console when the build is done. The API already answers under "
                    a href="/api/health" { "/api" } "."
                }
                pre { (steps) }
            }
        }
    }
    .into_string();
    let mut response =
        (StatusCode::SERVICE_UNAVAILABLE, axum::response::Html(page)).into_response();
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        HeaderValue::from(BUILDING_RELOAD_SECS),
    );
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    response
}

/// The console's files (`None`: a page saying how to build them).
pub(super) fn router(console: Option<ConsoleFiles>) -> Router {
    match console {
        Some(console) => {
            // `cargo xtask` writes each file's brotli (quality 11) and gzip next to it: served
            // as they are to a browser that takes them, so what is measured is what is served.
            // Anything else is compressed on the fly below.
            let index = tower_http::services::ServeFile::new(console.dir.join("index.html"))
                .precompressed_br()
                .precompressed_gzip();
            let files = tower_http::services::ServeDir::new(&console.dir)
                .precompressed_br()
                .precompressed_gzip()
                .fallback(index);
            Router::new()
                .fallback_service(files)
                .layer(axum::middleware::from_fn_with_state(
                    Arc::new(console),
                    inside_console,
                ))
                .layer(
                    tower_http::compression::CompressionLayer::new()
                        .br(true)
                        .gzip(true),
                )
        }
        None => Router::new().fallback(|| async { axum::response::Html(NO_CONSOLE) }),
    }
}

const NO_CONSOLE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Tandem</title></head><body><h1>Tandem</h1><p>The console is not built. Run <code>cargo xtask dev</code>, or use the API under <a href=\"/api/health\">/api</a>.</p></body></html>";

#[cfg(test)]
mod tests {
    use super::super::*;
    use axum::body::Body;
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    /// The edge with no regions, serving the console in `dir`.
    fn console_app(dir: &std::path::Path) -> Router {
        let edge = Arc::new(Edge::new(
            vec![],
            EdgeSettings::default(),
            None,
            Arc::new(Active::load(dir, &[]).unwrap()),
        ));
        let console = ConsoleFiles {
            dir: dir.to_path_buf(),
            progress: Some(dir.with_extension("progress")),
        };
        router(edge, Router::new(), Some(console))
    }

    async fn get(app: &Router, path: &str) -> (StatusCode, http::HeaderMap, String) {
        let resp = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (status, headers) = (resp.status(), resp.headers().clone());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, headers, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_console_still_building_gets_a_page_that_reloads_itself() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("dist");
        let app = console_app(&dir);
        let (status, headers, body) = get(&app, "/").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "no directory yet");
        assert_eq!(headers[http::header::RETRY_AFTER], "3");
        assert!(
            body.contains(r#"<meta http-equiv="refresh" content="3">"#),
            "{body}"
        );

        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.with_extension("progress"), "step 2/4: trunk <0.21>\n").unwrap();
        let (status, _, body) = get(&app, "/some/route").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "no index.html yet");
        assert!(body.contains("step 2/4: trunk &lt;0.21&gt;"), "{body}");

        std::fs::write(dir.join("index.html"), "<html>console</html>").unwrap();
        let (status, _, body) = get(&app, "/").await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "<html>console</html>")
        );
    }

    #[tokio::test]
    async fn console_files_never_lead_outside_the_console_directory() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "s3cr3t").unwrap();
        let console = tempfile::tempdir().unwrap();
        std::fs::write(console.path().join("index.html"), "<html>console</html>").unwrap();
        std::fs::write(console.path().join("app.js"), "js").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.txt"),
            console.path().join("leak.txt"),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), console.path().join("out")).unwrap();
        std::fs::write(console.path().join("style.css"), "css").unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.txt"),
            console.path().join("style.css.br"),
        )
        .unwrap();
        std::os::unix::fs::symlink(
            console.path().join("app.js"),
            console.path().join("alias.js"),
        )
        .unwrap();
        let app = console_app(console.path());
        let get = |path: &'static str| {
            let app = app.clone();
            async move {
                let resp = app
                    .oneshot(Request::get(path).body(Body::empty()).unwrap())
                    .await
                    .unwrap();
                let status = resp.status();
                let body = resp.into_body().collect().await.unwrap().to_bytes();
                (status, String::from_utf8_lossy(&body).into_owned())
            }
        };
        for path in ["/leak.txt", "/out/secret.txt", "/%6Ceak.txt", "/style.css"] {
            let (status, body) = get(path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
            assert!(!body.contains("s3cr3t"), "{path}");
        }
        assert_eq!(get("/app.js").await, (StatusCode::OK, "js".to_owned()));
        assert_eq!(get("/alias.js").await, (StatusCode::OK, "js".to_owned()));
        assert_eq!(
            get("/some/route").await.0,
            StatusCode::OK,
            "the SPA fallback still works"
        );
    }

    #[tokio::test]
    async fn precompressed_console_files_are_served_as_they_are() {
        let console = tempfile::tempdir().unwrap();
        std::fs::write(console.path().join("index.html"), "<html>console</html>").unwrap();
        std::fs::write(console.path().join("app.wasm"), "raw wasm").unwrap();
        std::fs::write(console.path().join("app.wasm.br"), "brotli bytes").unwrap();
        std::fs::write(console.path().join("app.wasm.gz"), "gzip bytes").unwrap();
        let app = console_app(console.path());
        let get = |accept: &'static str| {
            let app = app.clone();
            async move {
                let req = Request::get("/app.wasm")
                    .header(http::header::ACCEPT_ENCODING, accept)
                    .body(Body::empty())
                    .unwrap();
                let resp = app.oneshot(req).await.unwrap();
                let encoding = resp
                    .headers()
                    .get(http::header::CONTENT_ENCODING)
                    .map(|v| v.to_str().unwrap().to_owned());
                let body = resp.into_body().collect().await.unwrap().to_bytes();
                (encoding, String::from_utf8_lossy(&body).into_owned())
            }
        };
        assert_eq!(get("br").await, (Some("br".into()), "brotli bytes".into()));
        assert_eq!(get("gzip, deflate, br").await.0.as_deref(), Some("br"));
        assert_eq!(
            get("gzip").await,
            (Some("gzip".into()), "gzip bytes".into())
        );
        assert_eq!(get("identity").await, (None, "raw wasm".into()));
    }
}
