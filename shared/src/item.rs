//! Items as clients see them, and records as stores keep and replicate them.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::time::{Duration, UNIX_EPOCH};

/// An item's data: a JSON object, kept as its compact JSON text and never as a tree of values.
///
/// A tree costs many times the text it came from (a `serde_json::Value` per number, a B-tree
/// node per object: 400 KB of `{"":0},` is ~40 MB of tree), and items travel through every
/// request, page and replication batch; as text, an item costs its own size wherever it goes.
/// Requests are checked and made compact once, on the way in
/// ([`crate::validate::parse_write_body`]); after that the text passes through untouched.
#[derive(Clone)]
pub struct Data(Box<RawValue>);

impl Data {
    /// `{}`.
    pub fn new() -> Data {
        Data(RawValue::from_string("{}".to_owned()).expect("{} is JSON"))
    }

    /// The compact JSON text of the object.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The length of [`Data::as_str`] in bytes.
    pub fn len(&self) -> usize {
        self.as_str().len()
    }

    /// Always false: data is an object, at least `{}`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The object as a tree, for readers that look inside (the console's editor, tests).
    pub fn to_map(&self) -> Map<String, Value> {
        serde_json::from_str(self.as_str()).unwrap_or_default()
    }

    /// Data whose text was checked to be one compact JSON object (`validate` does).
    pub(crate) fn from_checked(text: String) -> Result<Data, serde_json::Error> {
        RawValue::from_string(text).map(Data)
    }
}

impl Default for Data {
    fn default() -> Data {
        Data::new()
    }
}

impl From<Map<String, Value>> for Data {
    fn from(map: Map<String, Value>) -> Data {
        let text = Value::Object(map).to_string();
        Data(RawValue::from_string(text).expect("a serialised object is JSON"))
    }
}

impl FromIterator<(String, Value)> for Data {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Data {
        Data::from(iter.into_iter().collect::<Map<String, Value>>())
    }
}

impl TryFrom<Value> for Data {
    type Error = &'static str;
    fn try_from(value: Value) -> Result<Data, Self::Error> {
        match value {
            Value::Object(map) => Ok(Data::from(map)),
            _ => Err("data must be a JSON object"),
        }
    }
}

/// Equal when the texts are: data written once and passed through compares equal everywhere.
impl PartialEq for Data {
    fn eq(&self, other: &Data) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Data {}

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Data {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// Takes the text as it is (no tree is built) and checks only that it is an object: what
/// arrives here was made compact by a region, and a peer or client reads it back as written.
impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Data, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        if !raw.get().starts_with('{') {
            return Err(serde::de::Error::custom("data must be a JSON object"));
        }
        Ok(Data(raw))
    }
}

/// `Item` of contract §1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Item {
    /// 1..=256 characters of `[A-Za-z0-9_.:-]`.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 256, pattern = "^[A-Za-z0-9_.:-]{1,256}$")
    )]
    pub id: String,
    /// Any JSON object.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: Data,
    /// Writes to this item as seen by the region that accepted the latest one.
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub version: u64,
    /// When the latest write was accepted: RFC 3339, UTC, milliseconds.
    #[cfg_attr(feature = "openapi", schema(format = DateTime, example = "2026-11-27T01:02:03.456Z"))]
    pub updated_at: String,
    /// The region that accepted the latest write.
    pub updated_in: String,
}

/// What a store keeps per id and what replication ships: the latest write, or a tombstone
/// (`data: None`) so that a delete replicates and wins or loses like any other write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub data: Option<Data>,
    pub version: u64,
    pub updated_at_ms: u64,
    pub updated_in: String,
}

impl Record {
    /// Last-writer-wins order of contract §5: later `updated_at` wins, ties broken by region name.
    /// Two records with the same key are the same write.
    pub fn lww_cmp(&self, other: &Record) -> Ordering {
        (self.updated_at_ms, self.updated_in.as_str())
            .cmp(&(other.updated_at_ms, other.updated_in.as_str()))
    }

    /// Whether `self`, arriving by replication, should replace `current`.
    pub fn wins_over(&self, current: Option<&Record>) -> bool {
        current.is_none_or(|c| self.lww_cmp(c) == Ordering::Greater)
    }

    /// The next write to this id accepted in `region` at wall-clock `now_ms`. The timestamp never
    /// goes backwards from what the region has already seen for the id, so a write made after
    /// seeing another one always wins over it, even when clocks disagree.
    pub fn next(
        id: &str,
        current: Option<&Record>,
        data: Option<Data>,
        region: &str,
        now_ms: u64,
    ) -> Record {
        let (version, updated_at_ms) = match current {
            Some(c) => (c.version + 1, now_ms.max(c.updated_at_ms + 1)),
            None => (1, now_ms),
        };
        Record {
            id: id.to_owned(),
            data,
            version,
            updated_at_ms,
            updated_in: region.to_owned(),
        }
    }

    /// Whether this record is a delete.
    pub fn is_tombstone(&self) -> bool {
        self.data.is_none()
    }

    /// The client's view, or `None` for a tombstone.
    /// [`Record::to_item`] without copying the data: for a record read only to be answered.
    pub fn into_item(self) -> Option<Item> {
        let updated_at = format_timestamp(self.updated_at_ms);
        Some(Item {
            id: self.id,
            data: self.data?,
            version: self.version,
            updated_at,
            updated_in: self.updated_in,
        })
    }

    pub fn to_item(&self) -> Option<Item> {
        Some(Item {
            id: self.id.clone(),
            data: self.data.clone()?,
            version: self.version,
            updated_at: format_timestamp(self.updated_at_ms),
            updated_in: self.updated_in.clone(),
        })
    }

    /// The ETag of this write: `"<version>.<region>.<ms>"`. It names one write, not only a
    /// version number: the same version accepted in two regions has two tags (contract §3).
    pub fn etag(&self) -> String {
        write_tag(self.version, &self.updated_in, self.updated_at_ms)
    }

    /// Size of the stored form in bytes, which bounds what DynamoDB counts against its 400 KB
    /// item limit (attribute names and values, here as their JSON text).
    pub fn stored_size(&self) -> usize {
        serde_json::to_vec(self)
            .map(|v| v.len())
            .unwrap_or(usize::MAX)
    }
}

impl Item {
    /// The ETag of the write this item shows (see [`Record::etag`]); clients that have the item
    /// but not its response headers send this as `If-Match`.
    pub fn etag(&self) -> Option<String> {
        let ms = parse_timestamp(&self.updated_at)?;
        Some(write_tag(self.version, &self.updated_in, ms))
    }
}

fn write_tag(version: u64, region: &str, ms: u64) -> String {
    format!("\"{version}.{region}.{ms}\"")
}

/// Milliseconds since the Unix epoch as RFC 3339 UTC with milliseconds.
pub fn format_timestamp(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// The inverse of [`format_timestamp`].
pub fn parse_timestamp(text: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339_weak(text).ok()?;
    u64::try_from(t.duration_since(UNIX_EPOCH).ok()?.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(v: Value) -> Data {
        Data::try_from(v).unwrap()
    }

    #[test]
    fn timestamps_round_trip_with_milliseconds() {
        let text = format_timestamp(1_764_000_000_123);
        assert_eq!(text, "2025-11-24T16:00:00.123Z");
        assert_eq!(parse_timestamp(&text), Some(1_764_000_000_123));
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn next_write_counts_versions_and_never_goes_back_in_time() {
        let first = Record::next("a", None, Some(data(json!({"n": 1}))), "us-east-1", 1000);
        assert_eq!((first.version, first.updated_at_ms), (1, 1000));
        // The clock went backwards (or the other region's clock is ahead): still later.
        let second = Record::next("a", Some(&first), None, "us-west-2", 500);
        assert_eq!((second.version, second.updated_at_ms), (2, 1001));
        assert!(second.wins_over(Some(&first)));
        assert!(!first.wins_over(Some(&second)));
    }

    #[test]
    fn ties_on_time_break_on_region_and_same_write_does_not_win() {
        let east = Record::next("a", None, Some(Data::new()), "us-east-1", 7);
        let west = Record::next("a", None, None, "us-west-2", 7);
        assert!(west.wins_over(Some(&east)));
        assert!(!east.wins_over(Some(&west)));
        assert!(!east.wins_over(Some(&east.clone())));
        assert!(east.wins_over(None));
    }

    #[test]
    fn etags_name_the_write_and_the_item_gives_the_same_one() {
        let east = Record::next("a", None, Some(Data::new()), "us-east-1", 7);
        let west = Record::next("a", None, Some(Data::new()), "us-west-2", 7);
        assert_eq!(east.etag(), "\"1.us-east-1.7\"");
        assert_ne!(east.etag(), west.etag());
        assert_eq!(east.to_item().unwrap().etag(), Some(east.etag()));
    }

    #[test]
    fn tombstones_have_no_item() {
        let t = Record::next("a", None, None, "us-east-1", 1);
        assert!(t.is_tombstone());
        assert_eq!(t.to_item(), None);
        assert_eq!(t.clone().into_item(), None);
        let r = Record::next("a", None, Some(data(json!({"k": "v"}))), "us-east-1", 1);
        let item = r.to_item().unwrap();
        assert_eq!(
            r.clone().into_item().unwrap(),
            item,
            "into_item is to_item without a copy"
        );
        assert_eq!(item.updated_at, "1970-01-01T00:00:00.001Z");
        assert_eq!(item.data.to_map()["k"], "v");
    }
}
