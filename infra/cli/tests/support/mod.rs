//! What the tests of `tandem`'s AWS commands share: the binary pointed at moto, and moto's
//! clients.

#![allow(dead_code)]

use std::process::{Command, Output, Stdio};
use tandem_shared::region::PRIMARY;
use tandem_testkit::Moto;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");

/// The `tandem` binary with no AWS configuration from the machine it runs on.
pub fn tandem(endpoint: &str) -> Command {
    let mut cmd = Command::new(TANDEM);
    for var in [
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL_S3",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_CONFIG_FILE", "/nonexistent/tandem-test-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/tandem-test-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .stdin(Stdio::null());
    cmd
}

pub fn run(cmd: &mut Command) -> (bool, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("tandem runs");
    (
        status.success(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// The clients a test inspects moto with, on the test kit's SDK config.
pub trait Clients {
    async fn s3(&self, region: &str) -> aws_sdk_s3::Client;
    async fn cfn(&self, region: &str) -> aws_sdk_cloudformation::Client;
    async fn cloudfront(&self) -> aws_sdk_cloudfront::Client;
    async fn dynamodb(&self, region: &str) -> aws_sdk_dynamodb::Client;
}

impl Clients for Moto {
    async fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        // moto on 127.0.0.1 cannot serve bucket.127.0.0.1: path-style, as `tandem` does.
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk_config(region).await)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    async fn cfn(&self, region: &str) -> aws_sdk_cloudformation::Client {
        aws_sdk_cloudformation::Client::new(&self.sdk_config(region).await)
    }

    /// CloudFront is global; its API lives in us-east-1.
    async fn cloudfront(&self) -> aws_sdk_cloudfront::Client {
        aws_sdk_cloudfront::Client::new(&self.sdk_config("us-east-1").await)
    }

    async fn dynamodb(&self, region: &str) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk_config(region).await)
    }
}

/// A distribution made through CloudFront's API, standing in for edge.yaml's (which moto's
/// CloudFormation cannot create): its id and domain.
pub async fn stand_in_distribution(moto: &Moto) -> (String, String) {
    use aws_sdk_cloudfront::types::{
        DefaultCacheBehavior, DistributionConfig, Origin, Origins, S3OriginConfig,
        ViewerProtocolPolicy,
    };
    let origin = Origin::builder()
        .id("console-s3")
        .domain_name(format!("console.s3.{PRIMARY}.amazonaws.com"))
        .s3_origin_config(S3OriginConfig::builder().origin_access_identity("").build())
        .build()
        .unwrap();
    let config = DistributionConfig::builder()
        .caller_reference("tandem-test")
        .comment("stand-in for edge.yaml's distribution")
        .enabled(true)
        .origins(
            Origins::builder()
                .quantity(1)
                .items(origin)
                .build()
                .unwrap(),
        )
        .default_cache_behavior(
            DefaultCacheBehavior::builder()
                .target_origin_id("console-s3")
                .viewer_protocol_policy(ViewerProtocolPolicy::RedirectToHttps)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let distribution = moto
        .cloudfront()
        .await
        .create_distribution()
        .distribution_config(config)
        .send()
        .await
        .unwrap()
        .distribution
        .unwrap();
    (
        distribution.id().to_owned(),
        distribution.domain_name().to_owned(),
    )
}
