//! The active region on AWS (`tandem_aws::active`): the writes `tandem failover` and `tandem
//! failback` make to the edge's CloudFront KeyValueStore, through the real SDK client against
//! a stand-in for the data-plane API (`support/fake_kvs.rs`; moto has none).
//!
//! What this shows: the requests the SDK builds (paths, `If-Match` with the ETag that
//! DescribeKeyValueStore returned, the `{"Value"}` body, SigV4a signing with region set `*`),
//! that an ETag changed by another writer is read again and the write retried once (and not a
//! second time), that nothing is written when the value is already there, and the errors. What
//! it cannot show: that AWS's service answers as the stand-in does.

#[path = "support/fake_kvs.rs"]
mod fake_kvs;

use fake_kvs::{FakeKvs, Recorded};
use tandem_aws::active::{Change, set};
use tandem_shared::region::{PRIMARY, SECONDARY};
use tandem_shared::routing::ACTIVE_REGION_KEY;

/// `(method, target, If-Match)` of each request.
fn calls(requests: &[Recorded]) -> Vec<(String, String, Option<String>)> {
    requests
        .iter()
        .map(|r| (r.method.clone(), r.target.clone(), r.if_match.clone()))
        .collect()
}

fn call(method: &str, target: &str, if_match: Option<&str>) -> (String, String, Option<String>) {
    (
        method.to_owned(),
        target.to_owned(),
        if_match.map(str::to_owned),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn failover_puts_the_key_and_failback_deletes_it_with_the_current_etag() {
    let fake = FakeKvs::start().await;
    let client = fake.client().await;

    let etag = fake.etag();
    let change = set(&client, &fake.arn, Some(SECONDARY)).await.unwrap();
    assert_eq!(
        change,
        Change {
            before: None,
            after: Some(SECONDARY.to_owned()),
            written: true,
            retried: false,
        }
    );
    assert_eq!(fake.value(ACTIVE_REGION_KEY).as_deref(), Some(SECONDARY));
    let requests = fake.take_requests();
    assert_eq!(
        calls(&requests),
        [
            call("GET", "describe", None),
            call("GET", ACTIVE_REGION_KEY, None),
            call("PUT", ACTIVE_REGION_KEY, Some(&etag)),
        ]
    );
    let put = &requests[2];
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&put.body).unwrap(),
        serde_json::json!({ "Value": SECONDARY })
    );
    // SigV4a, for every region, under the data plane's signing name.
    for r in &requests {
        assert!(
            r.authorization.starts_with("AWS4-ECDSA-P256-SHA256 ")
                && r.authorization
                    .contains("/cloudfront-keyvaluestore/aws4_request"),
            "{}",
            r.authorization
        );
        assert_eq!(r.region_set.as_deref(), Some("*"));
    }

    // Already there: read, nothing written.
    let change = set(&client, &fake.arn, Some(SECONDARY)).await.unwrap();
    assert!(!change.written);
    assert_eq!(
        calls(&fake.take_requests()),
        [
            call("GET", "describe", None),
            call("GET", ACTIVE_REGION_KEY, None)
        ]
    );

    // Failback deletes the key, with the ETag the put produced.
    let etag = fake.etag();
    let change = set(&client, &fake.arn, None).await.unwrap();
    assert_eq!(change.before.as_deref(), Some(SECONDARY));
    assert_eq!((change.after, change.written), (None, true));
    assert_eq!(fake.value(ACTIVE_REGION_KEY), None);
    assert_eq!(
        calls(&fake.take_requests()),
        [
            call("GET", "describe", None),
            call("GET", ACTIVE_REGION_KEY, None),
            call("DELETE", ACTIVE_REGION_KEY, Some(&etag)),
        ]
    );

    // And again: nothing to delete.
    let change = set(&client, &fake.arn, None).await.unwrap();
    assert!(!change.written);
    assert_eq!(fake.take_requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_write_beaten_by_another_writer_is_retried_once_with_the_new_etag() {
    let fake = FakeKvs::start().await;
    let client = fake.client().await;

    fake.conflict_next(1);
    let change = set(&client, &fake.arn, Some(SECONDARY)).await.unwrap();
    assert!(change.written && change.retried, "{change:?}");
    assert_eq!(fake.value(ACTIVE_REGION_KEY).as_deref(), Some(SECONDARY));
    let requests = calls(&fake.take_requests());
    let targets: Vec<(&str, &str)> = requests
        .iter()
        .map(|(m, t, _)| (m.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        targets,
        [
            ("GET", "describe"),
            ("GET", ACTIVE_REGION_KEY),
            ("PUT", ACTIVE_REGION_KEY),
            ("GET", "describe"),
            ("PUT", ACTIVE_REGION_KEY),
        ]
    );
    assert_ne!(requests[2].2, requests[4].2, "the retry names the new ETag");

    // Beaten twice: give up, write nothing, say so.
    fake.conflict_next(2);
    let err = set(&client, &fake.arn, Some(PRIMARY))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("changed the store twice"), "{err}");
    assert_eq!(fake.value(ACTIVE_REGION_KEY).as_deref(), Some(SECONDARY));
    let puts = fake
        .take_requests()
        .iter()
        .filter(|r| r.method == "PUT")
        .count();
    assert_eq!(puts, 2, "one retry only");
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_name_the_store_the_operation_and_what_is_missing() {
    let fake = FakeKvs::start().await;
    let client = fake.client().await;

    // A store that does not exist is an error, for a failback too (GetKey alone would take
    // its ResourceNotFoundException for a missing key, and report that nothing was to do).
    let other = fake.arn.replace("5e1a0c2b", "00000000");
    for value in [Some(SECONDARY), None] {
        let err = format!("{:#}", set(&client, &other, value).await.unwrap_err());
        assert!(
            err.contains("cloudfront-keyvaluestore:DescribeKeyValueStore")
                && err.contains(&other)
                && err.contains("ResourceNotFoundException"),
            "{err}"
        );
    }

    fake.deny(true);
    let err = format!(
        "{:#}",
        set(&client, &fake.arn, Some(SECONDARY)).await.unwrap_err()
    );
    assert!(
        err.contains("AccessDeniedException") && err.contains("PutKey and DeleteKey"),
        "{err}"
    );
    assert_eq!(fake.value(ACTIVE_REGION_KEY), None);
}
