//! moto's server on a free port: the AWS API stand-in the DynamoDB store and the deploy tests
//! run against. A missing moto fails the test: these tests never skip.

use crate::KillOnDrop;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

/// moto's server, killed when dropped (before its recorder's directory goes).
pub struct Moto {
    _child: KillOnDrop,
    pub endpoint: String,
    /// Where its request recorder writes (off until [`Moto::start_recording`]).
    _recording: tempfile::TempDir,
}

/// A request moto's recorder kept: what was called, and where its signature says it went.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub url: String,
    /// The region and service of the SigV4 credential scope (empty when unsigned).
    pub region: String,
    pub service: String,
}

impl Recorded {
    fn parse(line: &str) -> Option<Recorded> {
        let entry: serde_json::Value = serde_json::from_str(line).ok()?;
        let auth = entry["headers"]["Authorization"].as_str().unwrap_or("");
        // `AWS4-HMAC-SHA256 Credential=<key>/<date>/<region>/<service>/aws4_request, …`
        let scope: Vec<&str> = auth
            .split("Credential=")
            .nth(1)
            .and_then(|c| c.split(',').next())
            .map(|c| c.split('/').collect())
            .unwrap_or_default();
        Some(Recorded {
            method: entry["method"].as_str()?.to_owned(),
            url: entry["url"].as_str()?.to_owned(),
            region: scope.get(2).copied().unwrap_or("").to_owned(),
            service: scope.get(3).copied().unwrap_or("").to_owned(),
        })
    }
}

/// Where `moto_server` is: `$TANDEM_MOTO_SERVER`, the venv `cargo xtask test` makes, or PATH.
fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("TANDEM_MOTO_SERVER") {
        return path.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let venv = target.join("venv/bin/moto_server");
    if venv.exists() {
        return venv;
    }
    "moto_server".into()
}

impl Moto {
    /// Starts moto (`$TANDEM_MOTO_SERVER`, the venv, or PATH) and waits until it listens (it
    /// imports every service's models first, which takes a while on a busy two-core machine:
    /// up to a minute). A missing moto fails the test.
    pub async fn start() -> Moto {
        let bin = binary();
        match Moto::start_with(&bin).await {
            Ok(moto) => moto,
            Err(e) => panic!(
                "cannot start {} ({e}): run `cargo xtask test`, which installs moto, or set \
                 TANDEM_MOTO_SERVER",
                bin.display()
            ),
        }
    }

    /// Starts the moto server `bin`, for callers that report errors (the bench).
    pub async fn start_with(bin: &std::path::Path) -> Result<Moto, String> {
        // Outside the ephemeral range, like the stacks' ports: no client connection holds it.
        let port = crate::free_block(1).ok_or("no free port")?;
        let recording = tempfile::tempdir().map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env(
                "MOTO_RECORDER_FILEPATH",
                recording.path().join("requests.jsonl"),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let moto = Moto {
            _child: KillOnDrop(child),
            endpoint: format!("http://127.0.0.1:{port}"),
            _recording: recording,
        };
        let listening = crate::until(Duration::from_secs(60), || async {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        match listening.await {
            Some(_) => Ok(moto),
            None => Err(format!("moto_server did not start on port {port}")),
        }
    }

    /// Starts moto's request recorder afresh: from now on every request is kept.
    pub async fn start_recording(&self) {
        for step in ["reset-recording", "start-recording"] {
            let url = format!("{}/moto-api/recorder/{step}", self.endpoint);
            let response = reqwest::Client::new().post(url).send().await.unwrap();
            assert!(response.status().is_success(), "moto recorder {step}");
        }
    }

    /// The requests recorded since [`Moto::start_recording`].
    pub async fn recorded(&self) -> Vec<Recorded> {
        let url = format!("{}/moto-api/recorder/download-recording", self.endpoint);
        let text = reqwest::get(url).await.unwrap().text().await.unwrap();
        text.lines().filter_map(Recorded::parse).collect()
    }

    /// An SDK config for `region` pointed at this server, with test credentials and the
    /// project's one HTTPS stack (rustls on ring).
    #[cfg(feature = "aws")]
    pub async fn sdk_config(&self, region: &str) -> aws_config::SdkConfig {
        use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_owned()))
            .test_credentials()
            .endpoint_url(&self.endpoint)
            .http_client(
                aws_smithy_http_client::Builder::new()
                    .tls_provider(Provider::Rustls(CryptoMode::Ring))
                    .build_https(),
            )
            .load()
            .await
    }
}
