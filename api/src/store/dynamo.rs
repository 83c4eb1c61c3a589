//! The DynamoDB store: one item per id in a (global) table with partition key `id`.
//!
//! Each item keeps the same metadata as the embedded store (`version`, `updated_at_ms`,
//! `updated_in`), but the global table does the replication, and with it the conflict
//! resolution: when two regions write the same item concurrently, DynamoDB keeps the write with
//! the later timestamp *it* recorded (its own last writer wins), not the one with the later
//! `updated_at_ms`. Here that metadata is compared only by the conditional put, within one
//! region. Writes are a strongly consistent read then a conditional put, so `If-Match` and
//! version counting hold under concurrency in one region; two regions may both accept the same
//! `version` (their ETags differ). A delete is a plain DeleteItem: no tombstone is kept, and the
//! global table replicates and resolves it.
//!
//! Listing is a Scan (`list` below): in the table's hash order, not by id, and
//! eventually consistent, except on a strongly consistent (MRSC) table, where it reads with
//! `ConsistentRead` as GetItem always does.
//!
//! On an MRSC table (contract §10), DynamoDB refuses a write that meets a concurrent write of the
//! same item from another region with `ReplicatedWriteConflictException`: after the SDK's own
//! retries it is [`StoreError::Conflict`], a 409 the client may retry.
//!
//! Every call gives up after `STORE_CALL_TIMEOUT_MS` (each attempt after
//! `STORE_ATTEMPT_TIMEOUT_MS`), below the function's timeout, and is then an outage (503). A put
//! whose answer was lost that way may still have landed: the client must not resend it blindly
//! (`api/tests/store_timeouts.rs`).
//!
//! The region's admin fault is an item too, under an id no client can use (`#` is not allowed
//! in ids), so that every Lambda instance of the region reads the same fault.

use super::{
    Page, PageBudget, Store, StoreError, StoredFault, Written, check_precondition, check_size,
    now_ms,
};
use anyhow::{Context as _, anyhow, bail};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;
use std::time::Duration;
use tandem_shared::Consistency;
use tandem_shared::control::{
    STORE_ATTEMPT_TIMEOUT_MS, STORE_CALL_TIMEOUT_MS, STORE_WRITE_BUDGET_MS,
};
use tandem_shared::item::{Data, Record, format_timestamp};
use tandem_shared::replication::RegionReplication;
use tandem_shared::validate::{self, IfMatch, MAX_ITEM_BYTES};

type Attrs = HashMap<String, AttributeValue>;

/// Prefix of ids that are not items (the fault of each region).
const RESERVED_PREFIX: &str = "#";
/// How often a write retries when another writer got in between its read and its put.
const MAX_WRITE_ATTEMPTS: usize = 8;

/// Error codes that mean DynamoDB cannot take the call now (throttling, capacity, a service
/// error): an outage, answered 503 with `Retry-After` so the edge fails over, not a bug (500).
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "LimitExceededException",
    "TransactionConflictException",
    "InternalServerError",
    "ServiceUnavailable",
];

/// DynamoDB's error when another region writes the same item of an MRSC table at the same time.
const REPLICATED_WRITE_CONFLICT: &str = "ReplicatedWriteConflictException";

/// A failed SDK call as a store error: an outage (timeout, no connection, throttling, a
/// service error) is [`StoreError::Unavailable`], a replicated write conflict is
/// [`StoreError::Conflict`]; anything else is internal.
fn failure<E, R>(err: SdkError<E, R>, call: &'static str) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if let SdkError::ServiceError(e) = &err
        && e.err().code() == Some(REPLICATED_WRITE_CONFLICT)
    {
        let why = e.err().message().unwrap_or(REPLICATED_WRITE_CONFLICT);
        return StoreError::Conflict(format!("{call}: {why}"));
    }
    let outage = match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(e) => e.err().code().is_some_and(|c| TRANSIENT_CODES.contains(&c)),
        _ => false,
    };
    let err = anyhow::Error::from(err).context(call);
    if outage {
        StoreError::Unavailable(err)
    } else {
        StoreError::Internal(err)
    }
}

/// An item's size as DynamoDB counts it against its 400 KB limit: each attribute's name plus
/// its value (strings: their UTF-8 bytes; numbers: one byte per two significant digits, plus
/// one). Tandem stores only strings and numbers.
pub fn item_size(attrs: &Attrs) -> usize {
    attrs
        .iter()
        .map(|(name, value)| {
            name.len()
                + match value {
                    AttributeValue::S(s) => s.len(),
                    AttributeValue::N(n) => {
                        let digits = n.trim_start_matches('-').replace('.', "");
                        let significant = digits.trim_start_matches('0').trim_end_matches('0');
                        significant.len().div_ceil(2) + 1
                    }
                    // Not written by Tandem; counted generously.
                    _ => MAX_ITEM_BYTES,
                }
        })
        .sum()
}

/// The roots AWS service endpoints chain to (Amazon Trust Services, and the Starfield root
/// that cross-signs them), as PEM.
pub const AWS_ROOTS: &str = include_str!("aws-roots.pem");

/// Which certificate authorities an AWS client trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roots {
    /// The machine's store: the CLI and a local region, which may be pointed anywhere.
    System,
    /// [`AWS_ROOTS`] only: the Lambda, which talks to DynamoDB and Secrets Manager alone.
    /// Reading and parsing the image's whole store (about 140 roots) was the largest piece of
    /// its init (docs/benchmarks.md), and a smaller set trusts less.
    Aws,
}

/// The AWS SDK configuration of every Tandem AWS client (this store, the Lambda's runtime
/// secret, `tandem deploy`): credentials, endpoint (`AWS_ENDPOINT_URL`) and region from the
/// environment, `region` overriding `AWS_REGION` when given, and the project's one HTTPS
/// stack, hyper 1 + rustls on ring, trusting `roots`. The SDK's default client would add
/// aws-lc and a second rustls setup to every binary.
pub async fn sdk_config(region: Option<&str>, roots: Roots) -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls;
    let trust = match roots {
        Roots::System => tls::TrustStore::default(),
        Roots::Aws => tls::TrustStore::empty().with_pem_certificate(AWS_ROOTS.as_bytes()),
    };
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .tls_context(
            tls::TlsContext::builder()
                .with_trust_store(trust)
                .build()
                // Cannot fail (it only stores the trust store); the default trusts the system's.
                .unwrap_or_default(),
        )
        .build_https();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_owned()));
    }
    loader.load().await
}

/// A store backed by a DynamoDB table.
#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    region: String,
    consistency: Consistency,
}

impl DynamoStore {
    /// Uses `client` on `table`, with the store's call timeouts; `region` is the name written
    /// into `updated_in`.
    pub fn new(client: Client, table: impl Into<String>, region: impl Into<String>) -> Self {
        let timeouts = TimeoutConfig::builder()
            .operation_timeout(Duration::from_millis(STORE_CALL_TIMEOUT_MS))
            .operation_attempt_timeout(Duration::from_millis(STORE_ATTEMPT_TIMEOUT_MS))
            .build();
        let config = client
            .config()
            .to_builder()
            .timeout_config(timeouts)
            .build();
        DynamoStore {
            client: Client::from_conf(config),
            table: table.into(),
            region: region.into(),
            consistency: Consistency::Eventual,
        }
    }

    /// The same store on a table created in `consistency` mode: on a strong (MRSC) table a
    /// list page reads with `ConsistentRead` too.
    pub fn with_consistency(mut self, consistency: Consistency) -> Self {
        self.consistency = consistency;
        self
    }

    /// Builds a client from the environment (credentials, `AWS_REGION`, `AWS_ENDPOINT_URL`)
    /// with the project's one HTTPS stack: hyper 1 + rustls on ring.
    pub async fn from_env(table: impl Into<String>, region: impl Into<String>) -> Self {
        let region = region.into();
        let config = sdk_config(Some(&region), Roots::System).await;
        DynamoStore::from_sdk_config(&config, table, region)
    }

    /// Uses a client made from `config` (see [`sdk_config`]), so that other clients made at
    /// init (the runtime secret's) share its credentials and connection setup.
    pub fn from_sdk_config(
        config: &aws_config::SdkConfig,
        table: impl Into<String>,
        region: impl Into<String>,
    ) -> Self {
        DynamoStore::new(Client::new(config), table, region)
    }

    /// The client, for tests and tools that create the table.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn key(id: &str) -> Attrs {
        HashMap::from([("id".to_owned(), AttributeValue::S(id.to_owned()))])
    }

    fn fault_id(&self) -> String {
        format!("{RESERVED_PREFIX}fault#{}", self.region)
    }

    async fn read(&self, id: &str) -> Result<Option<Record>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| failure(e, "DynamoDB GetItem"))?;
        Ok(out.item.as_ref().map(to_record).transpose()?)
    }

    /// A put, read-then-conditional-put, retried while other writers get in between.
    async fn write_until_settled(
        &self,
        id: &str,
        data: Data,
        if_match: Option<IfMatch>,
    ) -> Result<Written, StoreError> {
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let current = self.read(id).await?;
            check_precondition(if_match.as_ref(), current.as_ref(), &self.region)?;
            let record = Record::next(
                id,
                current.as_ref(),
                Some(data.clone()),
                &self.region,
                now_ms(),
            );
            check_size(record.stored_size())?;
            let attrs = to_attrs(&record)?;
            // DynamoDB's own count, with the attributes Tandem adds: no item that passes here
            // meets a ValidationException there.
            let size = item_size(&attrs);
            if size > MAX_ITEM_BYTES {
                return Err(StoreError::TooLarge(size));
            }
            let mut put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(attrs));
            put = match &current {
                None => put.condition_expression("attribute_not_exists(id)"),
                Some(c) => put
                    .condition_expression("version = :v AND updated_at_ms = :t")
                    .expression_attribute_values(":v", AttributeValue::N(c.version.to_string()))
                    .expression_attribute_values(
                        ":t",
                        AttributeValue::N(c.updated_at_ms.to_string()),
                    ),
            };
            match put.send().await {
                Ok(_) => {
                    return Ok(Written {
                        record,
                        created: current.is_none(),
                    });
                }
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    // The SDK retries an attempt whose answer never came; if that attempt
                    // landed, the retry finds its own write: done, not a conflict.
                    if self.read(id).await?.as_ref() == Some(&record) {
                        return Ok(Written {
                            record,
                            created: current.is_none(),
                        });
                    }
                    // Someone wrote in between: read again and re-check the precondition.
                    continue;
                }
                Err(err) => return Err(failure(err, "DynamoDB PutItem")),
            }
        }
        // Contention is load, not a bug: 503 with Retry-After, and the client may retry.
        Err(StoreError::Unavailable(anyhow!(
            "gave up after {MAX_WRITE_ATTEMPTS} conflicting writes to {id}"
        )))
    }
}

impl DynamoStore {
    /// A conditional delete: read, check `if_match`, delete only that very write, and again
    /// while other writers get in between.
    async fn delete_until_settled(&self, id: &str, if_match: IfMatch) -> Result<(), StoreError> {
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let current = self.read(id).await?;
            check_precondition(Some(&if_match), current.as_ref(), &self.region)?;
            let Some(c) = current else {
                return Err(StoreError::PreconditionFailed);
            };
            let deleted = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(id)))
                .condition_expression("version = :v AND updated_at_ms = :t")
                .expression_attribute_values(":v", AttributeValue::N(c.version.to_string()))
                .expression_attribute_values(":t", AttributeValue::N(c.updated_at_ms.to_string()))
                .send()
                .await;
            match deleted {
                Ok(_) => return Ok(()),
                Err(err)
                    if err
                        .as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    // Changed or gone since the read (or an SDK retry of a delete that landed):
                    // read again and re-check the precondition.
                    continue;
                }
                Err(err) => return Err(failure(err, "DynamoDB DeleteItem")),
            }
        }
        Err(StoreError::Unavailable(anyhow!(
            "gave up after {MAX_WRITE_ATTEMPTS} conflicting writes to {id}"
        )))
    }
}

fn s(attrs: &Attrs, name: &str) -> anyhow::Result<String> {
    match attrs.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(anyhow!("item attribute {name} is missing or not a string")),
    }
}

fn n(attrs: &Attrs, name: &str) -> anyhow::Result<u64> {
    match attrs.get(name) {
        Some(AttributeValue::N(v)) => v.parse().with_context(|| format!("attribute {name}")),
        _ => Err(anyhow!("item attribute {name} is missing or not a number")),
    }
}

fn to_record(attrs: &Attrs) -> anyhow::Result<Record> {
    let data: Data = match attrs.get("data") {
        Some(AttributeValue::S(text)) => {
            serde_json::from_str(text).context("item data is not a JSON object")?
        }
        _ => bail!("item attribute data is missing or not a string"),
    };
    Ok(Record {
        id: s(attrs, "id")?,
        data: Some(data),
        version: n(attrs, "version")?,
        updated_at_ms: n(attrs, "updated_at_ms")?,
        updated_in: s(attrs, "updated_in")?,
    })
}

fn to_attrs(record: &Record) -> anyhow::Result<Attrs> {
    let data = record
        .data
        .as_ref()
        .ok_or_else(|| anyhow!("tombstones are not stored in DynamoDB"))?;
    Ok(HashMap::from([
        ("id".to_owned(), AttributeValue::S(record.id.clone())),
        (
            "data".to_owned(),
            AttributeValue::S(data.as_str().to_owned()),
        ),
        (
            "version".to_owned(),
            AttributeValue::N(record.version.to_string()),
        ),
        (
            "updated_at_ms".to_owned(),
            AttributeValue::N(record.updated_at_ms.to_string()),
        ),
        // Human-readable copy for the AWS console; `updated_at_ms` is the one compared.
        (
            "updated_at".to_owned(),
            AttributeValue::S(format_timestamp(record.updated_at_ms)),
        ),
        (
            "updated_in".to_owned(),
            AttributeValue::S(record.updated_in.clone()),
        ),
    ]))
}

impl Store for DynamoStore {
    fn consistency(&self) -> Consistency {
        self.consistency
    }

    async fn get(&self, id: &str) -> Result<Option<Record>, StoreError> {
        Ok(self.read(id).await?.filter(|r| !r.is_tombstone()))
    }

    async fn put(
        &self,
        id: &str,
        data: Data,
        if_match: Option<IfMatch>,
    ) -> Result<Written, StoreError> {
        // Contended writes loop: the whole write must still end before the function's timeout.
        let budget = Duration::from_millis(STORE_WRITE_BUDGET_MS);
        tokio::time::timeout(budget, self.write_until_settled(id, data, if_match))
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Unavailable(anyhow!(
                    "the write to {id} did not settle within {budget:?}"
                )))
            })
    }

    async fn delete(&self, id: &str, if_match: Option<IfMatch>) -> Result<(), StoreError> {
        let Some(if_match) = if_match else {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(id)))
                .send()
                .await
                .map_err(|e| failure(e, "DynamoDB DeleteItem"))?;
            return Ok(());
        };
        // As a contended put: the whole conditional delete ends before the function's timeout.
        let budget = Duration::from_millis(STORE_WRITE_BUDGET_MS);
        tokio::time::timeout(budget, self.delete_until_settled(id, if_match))
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Unavailable(anyhow!(
                    "the delete of {id} did not settle within {budget:?}"
                )))
            })
    }

    /// A Scan from after the item `after` (its `ExclusiveStartKey`), so in the table's own
    /// (hash) order, not by id, and eventually consistent (strongly consistent on an MRSC
    /// table): on an eventual table a write acknowledged a moment ago may be missing. DynamoDB does not promise that two replicas scan in the same order, so a
    /// cursor is a position in this region's replica. The page's `last` is the last item
    /// evaluated; the page after it may be empty.
    async fn list(&self, limit: usize, after: Option<String>) -> Result<Page, StoreError> {
        let mut budget = PageBudget::new(limit);
        let mut items = Vec::new();
        let mut start = after.map(|id| Self::key(&id));
        // The id the next page starts after, once this one ends early.
        let mut last: Option<String> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .limit((limit - items.len()) as i32)
                .consistent_read(self.consistency == Consistency::Strong)
                .set_exclusive_start_key(start.take())
                .filter_expression("NOT begins_with(id, :reserved)")
                .expression_attribute_values(":reserved", AttributeValue::S(RESERVED_PREFIX.into()))
                .send()
                .await
                .map_err(|e| failure(e, "DynamoDB Scan"))?;
            for attrs in out.items() {
                let record = to_record(attrs)?;
                let cost = record.data.as_ref().map_or(0, |data| {
                    validate::item_page_cost(&record.id, data, &record.updated_in)
                });
                if !budget.take(cost) {
                    return Ok(Page { items, last });
                }
                last = Some(record.id.clone());
                items.extend(record.into_item());
            }
            match out.last_evaluated_key {
                Some(key) if !budget.out_of_time() && items.len() < limit => start = Some(key),
                Some(key) => {
                    let last = s(&key, "id")?;
                    return Ok(Page {
                        items,
                        last: Some(last),
                    });
                }
                None => return Ok(Page { items, last: None }),
            }
        }
    }

    async fn load_fault(&self) -> Result<Option<StoredFault>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(&self.fault_id())))
            .send()
            .await
            .map_err(|e| failure(e, "DynamoDB GetItem (fault)"))?;
        match out.item {
            Some(attrs) => Ok(Some(
                serde_json::from_str(&s(&attrs, "fault")?).context("stored fault is corrupt")?,
            )),
            None => Ok(None),
        }
    }

    async fn save_fault(&self, fault: StoredFault) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("id", AttributeValue::S(self.fault_id()))
            .item(
                "fault",
                AttributeValue::S(serde_json::to_string(&fault).map_err(anyhow::Error::from)?),
            )
            .send()
            .await
            .map_err(|e| failure(e, "DynamoDB PutItem (fault)"))?;
        Ok(())
    }

    async fn replication(&self) -> RegionReplication {
        RegionReplication {
            region: self.region.clone(),
            store: "dynamodb".into(),
            table: Some(self.table.clone()),
            ..RegionReplication::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;

    /// The SDK parses [`AWS_ROOTS`] when it makes its first connection, and panics on a bad
    /// certificate: parse them the same way here, and check each is a root of Mozilla's store.
    #[test]
    fn the_lambdas_aws_roots_parse_and_are_mozilla_roots() {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject as _;
        let certs: Vec<CertificateDer> = CertificateDer::pem_slice_iter(AWS_ROOTS.as_bytes())
            .collect::<Result<_, _>>()
            .expect("valid PEM");
        assert_eq!(
            certs.len(),
            5,
            "Amazon Root CA 1-4 and Starfield Services G2"
        );
        for cert in &certs {
            let anchor = webpki::anchor_from_trusted_cert(cert).expect("a parsable root");
            assert!(
                webpki_roots::TLS_SERVER_ROOTS
                    .iter()
                    .any(|root| root.subject == anchor.subject
                        && root.subject_public_key_info == anchor.subject_public_key_info),
                "not a root of Mozilla's store: {:?}",
                String::from_utf8_lossy(&anchor.subject)
            );
        }
    }

    fn service(code: &str) -> SdkError<PutItemError, ()> {
        SdkError::service_error(
            PutItemError::generic(ErrorMetadata::builder().code(code).build()),
            (),
        )
    }

    #[test]
    fn throttling_and_timeouts_are_outages_and_the_rest_internal() {
        for code in [
            "ThrottlingException",
            "ProvisionedThroughputExceededException",
        ] {
            assert!(
                matches!(failure(service(code), "x"), StoreError::Unavailable(_)),
                "{code}"
            );
        }
        let timeout: SdkError<PutItemError, ()> = SdkError::timeout_error("slow");
        assert!(matches!(failure(timeout, "x"), StoreError::Unavailable(_)));
        assert!(matches!(
            failure(service("ValidationException"), "x"),
            StoreError::Internal(_)
        ));
    }

    #[test]
    fn a_replicated_write_conflict_is_a_conflict_not_an_outage() {
        assert!(matches!(
            failure(service("ReplicatedWriteConflictException"), "DynamoDB PutItem"),
            StoreError::Conflict(why) if why.starts_with("DynamoDB PutItem")
        ));
    }

    #[test]
    fn item_size_counts_as_dynamodb_does() {
        let attrs: Attrs = HashMap::from([
            ("id".to_owned(), AttributeValue::S("abc".into())),
            ("version".to_owned(), AttributeValue::N("12".into())),
            (
                "updated_at_ms".to_owned(),
                AttributeValue::N("1764000000123".into()),
            ),
            ("n".to_owned(), AttributeValue::N("-0.00100".into())),
        ]);
        // id 2+3, version 7+(1+1), updated_at_ms 13+(7+1), n 1+(1+1)
        assert_eq!(item_size(&attrs), 5 + 9 + 21 + 3);
        // A record exactly at the limit by its JSON size is over it by DynamoDB's count (the
        // extra `updated_at` attribute): only the second check keeps it from DynamoDB.
        let record = |len: usize| Record {
            id: "k".repeat(256),
            data: Some(
                serde_json::from_str(&format!("{{\"b\":\"{}\"}}", "x".repeat(len))).unwrap(),
            ),
            version: 1,
            updated_at_ms: 1_764_000_000_123,
            updated_in: "ap-southeast-2".into(),
        };
        let len = (409_000..409_600)
            .find(|&len| record(len).stored_size() == MAX_ITEM_BYTES)
            .unwrap();
        let dynamo = item_size(&to_attrs(&record(len)).unwrap());
        assert!(dynamo > MAX_ITEM_BYTES, "{dynamo}");
    }
}
