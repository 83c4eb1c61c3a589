//! `tandem rotate-secret` on moto: each step of a rotation, with the regions' view of the
//! origin secret checked after it (the value the edge sends is always accepted, in both
//! regions), then the real binary running a whole rotation.
//!
//! moto's CloudFormation cannot create edge.yaml (see deploy.rs), so the edge stack is a
//! stand-in with the real template's `Parameters`, one bucket, and the `DistributionId` of a
//! distribution made through moto's CloudFront API. What CloudFront sends is worked out as
//! CloudFormation resolves the header, once per stack operation: the secret's `origin_secret`
//! at the version the stack's `OriginSecretVersionId` pins (AWSCURRENT when empty), as it was
//! when the stack was last created or updated.

mod support;

use serde_json::json;
use std::path::Path;
use std::time::Duration;
use support::{Clients as _, run, stand_in_distribution, tandem};
use tandem_api::origin::OriginSecrets;
use tandem_api::secret::RuntimeSecret;
use tandem_aws::rotate::{EDGE_LABEL, Rotation, VERSION_PARAMETER};
use tandem_aws::sdk::Aws;
use tandem_shared::region::{PRIMARY, SECONDARY};
use tandem_testkit::Moto;

const SECRET: &str = "rot/secrets";
const EDGE: &str = "rot-edge";
const TEMPLATES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../aws/cloudformation");

/// The secret as data.yaml leaves it (replicated to the secondary region), and an edge stack
/// that reads it.
async fn deployed(moto: &Moto) {
    let secrets = aws_sdk_secretsmanager::Client::new(&moto.sdk_config(PRIMARY).await);
    secrets
        .create_secret()
        .name(SECRET)
        .secret_string(json!({"admin_token": "admin", "origin_secret": "first"}).to_string())
        .add_replica_regions(
            aws_sdk_secretsmanager::types::ReplicaRegionType::builder()
                .region(SECONDARY)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let (distribution, _) = stand_in_distribution(moto).await;
    let real: serde_norway::Value = serde_norway::from_str(
        &std::fs::read_to_string(Path::new(TEMPLATES).join("edge.yaml")).unwrap(),
    )
    .unwrap();
    let template = json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {
            "SecretName": serde_json::to_value(&real["Parameters"]["SecretName"]).unwrap(),
            VERSION_PARAMETER: serde_json::to_value(&real["Parameters"][VERSION_PARAMETER]).unwrap(),
        },
        "Resources": {"Stub": {"Type": "AWS::S3::Bucket"}},
        "Outputs": {"DistributionId": {"Value": distribution}},
    });
    let cfn = moto.cfn(PRIMARY).await;
    cfn.create_stack()
        .stack_name(EDGE)
        .template_body(template.to_string())
        .parameters(
            aws_sdk_cloudformation::types::Parameter::builder()
                .parameter_key("SecretName")
                .parameter_value(SECRET)
                .build(),
        )
        .send()
        .await
        .unwrap();
}

/// The `x-origin-verify` value the edge stack resolves to now: call it right after a stack
/// operation, when CloudFormation resolves it.
async fn resolve(moto: &Moto) -> String {
    let value = secret(moto, pinned(moto).await).await;
    value["origin_secret"].as_str().unwrap().to_owned()
}

/// A region's instance: what it read at init, re-read from its own region's copy.
async fn region(moto: &Moto, name: &str) -> OriginSecrets {
    let client = aws_sdk_secretsmanager::Client::new(&moto.sdk_config(name).await);
    let initial = RuntimeSecret::fetch(&client, SECRET).await.unwrap();
    let fetch: tandem_api::origin::Fetch = std::sync::Arc::new(move || {
        let client = client.clone();
        Box::pin(async move { RuntimeSecret::fetch(&client, SECRET).await })
    });
    // Every unknown value is looked up at once: the steps follow each other in milliseconds
    // here, where on AWS they are minutes apart.
    OriginSecrets::new(&initial, fetch).refetching_after(Duration::ZERO)
}

/// Both regions accept what the edge sends: the instances running since the deploy, and
/// instances starting now (which read the secret as it is at this step).
async fn assert_accepted(moto: &Moto, running: &[OriginSecrets], sent: &str, step: &str) {
    for (name, instance) in [PRIMARY, SECONDARY].into_iter().zip(running) {
        let fresh = region(moto, name).await;
        assert!(
            instance.accepts(sent.as_bytes()).await,
            "after {step}, {name} refused the edge"
        );
        assert!(
            fresh.accepts(sent.as_bytes()).await,
            "after {step}, a new instance in {name} refused the edge"
        );
    }
}

/// The version the edge stack pins (`None`: AWSCURRENT).
async fn pinned(moto: &Moto) -> Option<String> {
    let stack = moto
        .cfn(PRIMARY)
        .await
        .describe_stacks()
        .stack_name(EDGE)
        .send()
        .await
        .unwrap()
        .stacks
        .unwrap()
        .remove(0);
    stack
        .parameters()
        .iter()
        .find(|p| p.parameter_key() == Some(VERSION_PARAMETER))
        .and_then(|p| p.parameter_value())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The staging labels of each version of the secret in the primary region.
async fn labels(moto: &Moto) -> std::collections::BTreeMap<String, Vec<String>> {
    let secrets = aws_sdk_secretsmanager::Client::new(&moto.sdk_config(PRIMARY).await);
    let described = secrets
        .describe_secret()
        .secret_id(SECRET)
        .send()
        .await
        .unwrap();
    described
        .version_ids_to_stages()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// The version the edge pins carries [`EDGE_LABEL`], and no other version does.
async fn assert_pinned_labelled(moto: &Moto, step: &str) -> String {
    let pinned = pinned(moto).await.expect("the edge pins a version");
    let labels = labels(moto).await;
    let holders: Vec<&String> = labels
        .iter()
        .filter(|(_, stages)| stages.iter().any(|s| s == EDGE_LABEL))
        .map(|(v, _)| v)
        .collect();
    assert_eq!(holders, [&pinned], "after {step}: {labels:?}");
    pinned
}

/// The secret's value at `version` (`None`: AWSCURRENT) in the primary region.
async fn secret(moto: &Moto, version: Option<String>) -> serde_json::Value {
    let secrets = aws_sdk_secretsmanager::Client::new(&moto.sdk_config(PRIMARY).await);
    let out = secrets
        .get_secret_value()
        .secret_id(SECRET)
        .set_version_id(version)
        .send()
        .await
        .unwrap();
    serde_json::from_str(out.secret_string().unwrap()).unwrap()
}

#[tokio::test]
async fn a_rotation_never_refuses_the_edge_and_the_binary_runs_it_whole() {
    let moto = Moto::start().await;
    deployed(&moto).await;
    let regions = [region(&moto, PRIMARY).await, region(&moto, SECONDARY).await];
    let sent = resolve(&moto).await;
    assert_eq!(sent, "first");
    assert_accepted(&moto, &regions, &sent, "deploy").await;

    let aws = Aws::from_config(moto.sdk_config(PRIMARY).await);
    // A rotation that could not finish does not start: no edge stack, no change to the secret.
    let lost = Rotation::new(aws.clone(), SECRET, [PRIMARY, SECONDARY], "no-such-edge");
    let err = lost.preflight().await.unwrap_err();
    assert!(format!("{err:#}").contains("does not exist"), "{err:#}");
    assert!(
        secret(&moto, None)
            .await
            .get("previous_origin_secret")
            .is_none()
    );

    let rotation = Rotation::new(aws, SECRET, [PRIMARY, SECONDARY], EDGE);
    rotation.preflight().await.unwrap();
    let staged = rotation.stage().await.unwrap();
    assert_accepted(&moto, &regions, &sent, "stage").await;
    let staged_secret = secret(&moto, None).await;
    assert_eq!(staged_secret["previous_origin_secret"], "first");
    assert_eq!(staged_secret["admin_token"], "admin", "other keys are kept");
    let new = staged_secret["origin_secret"].as_str().unwrap().to_owned();
    assert_eq!(new.len(), 48);
    assert!(
        new.chars().all(|c| c.is_ascii_alphanumeric()),
        "a header-safe value"
    );

    // Stopped here, a second run carries the same rotation on instead of starting another.
    let again = rotation.stage().await.unwrap();
    assert_eq!(again.version_id, staged.version_id);

    rotation.wait_for_replica(&staged).await.unwrap();
    assert_accepted(&moto, &regions, &sent, "the replica's wait").await;
    rotation.switch_edge(&staged).await.unwrap();
    let sent = resolve(&moto).await;
    assert_eq!(sent, new);
    assert_accepted(&moto, &regions, &sent, "switch").await;
    assert_eq!(
        assert_pinned_labelled(&moto, "switch").await,
        staged.version_id
    );
    rotation.retire(&staged).await.unwrap();
    assert_accepted(&moto, &regions, &sent, "retire").await;
    let retired = secret(&moto, None).await;
    assert_eq!(
        retired,
        json!({"admin_token": "admin", "origin_secret": new})
    );

    // As an edge pinned by a tandem from before the label: the label is gone.
    aws_sdk_secretsmanager::Client::new(&moto.sdk_config(PRIMARY).await)
        .update_secret_version_stage()
        .secret_id(SECRET)
        .version_stage(EDGE_LABEL)
        .remove_from_version_id(&staged.version_id)
        .send()
        .await
        .unwrap();
    // The next rotation's stage labels the pinned version first, then takes AWSPREVIOUS off
    // it (the retire made it AWSPREVIOUS): its own label keeps it from being deprecated, and
    // the edge's reference still resolves, until the edge has moved off it.
    let next = rotation.stage().await.unwrap();
    assert_ne!(next.version_id, staged.version_id);
    let kept = labels(&moto).await;
    assert_eq!(
        kept[&staged.version_id],
        [EDGE_LABEL.to_owned()],
        "the pinned version has only its own label left: {kept:?}"
    );
    assert_pinned_labelled(&moto, "the next stage").await;
    assert_eq!(
        resolve(&moto).await,
        new,
        "the edge still resolves its value"
    );

    // The binary carries that second rotation on to its end.
    let (ok, out, err) = run(tandem(&moto.endpoint).args([
        "rotate-secret",
        "--secret-name",
        SECRET,
        "--prefix",
        "rot",
    ]));
    assert!(ok, "tandem rotate-secret failed:\n{out}\n{err}");
    let last = secret(&moto, None).await;
    assert!(last.get("previous_origin_secret").is_none(), "{last}");
    assert_ne!(last["origin_secret"], new.as_str());
    let sent = resolve(&moto).await;
    assert_eq!(sent, last["origin_secret"].as_str().unwrap());
    assert_accepted(&moto, &regions, &sent, "the binary's rotation").await;
    // The label moved with the edge: on the version it pins now, off the one it left.
    assert_eq!(
        assert_pinned_labelled(&moto, "the binary's rotation").await,
        next.version_id
    );
    assert!(
        labels(&moto)
            .await
            .get(&staged.version_id)
            .is_none_or(|stages| stages.is_empty()),
        "the version the edge left keeps no label"
    );
}
