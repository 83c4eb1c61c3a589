//! moto's server on a free port: the AWS API stand-in the DynamoDB store and the deploy tests
//! run against. A missing moto fails the test: these tests never skip.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// moto's server, killed when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
        let child = Command::new(bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let listening = crate::until(Duration::from_secs(60), || async {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        match listening.await {
            Some(_) => Ok(moto),
            None => Err(format!("moto_server did not start on port {port}")),
        }
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
