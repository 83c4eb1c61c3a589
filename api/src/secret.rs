//! The runtime secret: what Secrets Manager holds for a region on AWS (the admin token and the
//! origin secret), read at the Lambda's init and again as a rotation goes on.

/// The runtime secret data.yaml creates: `{"admin_token": …, "origin_secret": …}`.
///
/// `Debug` shows no value, so that the secret cannot end up in a log by accident.
#[derive(Clone, serde::Deserialize)]
pub struct RuntimeSecret {
    pub admin_token: String,
    pub origin_secret: String,
    /// During a rotation (`tandem rotate-secret`): the value the edge may still send.
    #[serde(default)]
    pub previous_origin_secret: Option<String>,
}

impl std::fmt::Debug for RuntimeSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RuntimeSecret { admin_token: <redacted>, origin_secret: <redacted> }")
    }
}
