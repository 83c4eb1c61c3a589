//! Request validation shared by every store: what a client may send.
//!
//! Every failure here is the client's mistake and maps to a 4xx code, never a 5xx.

use crate::error::ErrorCode;
use crate::item::{Data, Record};
use crate::wire::{PutBody, WriteBody};
use serde::Deserialize;
use serde_json::error::Category;
use serde_json::value::RawValue;

/// Longest id, in characters.
pub const MAX_ID_LEN: usize = 256;
/// DynamoDB's item size limit, which both stores enforce on the stored form.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// Bodies larger than this are refused before parsing. Larger than an item may be, so that
/// a body just over the item limit still gets the precise 413 for the item.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Page size bounds and default for `GET /api/items`.
pub const LIST_LIMIT_MAX: usize = 100;
pub const LIST_LIMIT_DEFAULT: usize = 25;
/// Most bytes of one `GET /api/items` answer, counted as Lambda carries it: the runtime sends a
/// response as JSON with the body inside a string, so every `"` and `\` of the page is escaped
/// once more (a page of 5 MiB of items may be 10 MB on that wire). Lambda refuses a response
/// over 6 MB, and that 5xx would make the edge fail over for what is no outage; this budget
/// leaves room for the envelope and the headers. At least one item is always sent (a 400 KB
/// item is at most ~800 KB escaped).
pub const LIST_PAGE_MAX_BYTES: usize = 5 * 1024 * 1024;

/// What one item adds to a page, against [`LIST_PAGE_MAX_BYTES`], from the record as a store
/// keeps it (its JSON), before anything is decoded: its length, one more for each byte Lambda
/// escapes again, and what the item's shape adds to the record's (`updated_at` as quoted text
/// instead of milliseconds, a comma).
pub fn page_cost(stored_record: &[u8]) -> usize {
    escaped_len(stored_record) + 32
}

/// What one item adds to a page, from its parts (a store that does not keep records as JSON).
pub fn item_page_cost(id: &str, data: &Data, updated_in: &str) -> usize {
    // `{"id":"…","data":…,"version":…,"updated_at":"…","updated_in":"…"},`: 61 fixed bytes
    // and 18 quotes, a version of at most 20 digits, a 24-byte timestamp.
    id.len() + escaped_len(data.as_str().as_bytes()) + updated_in.len() + 61 + 18 + 20 + 24
}

/// Length of `json` once escaped into a JSON string: `"` and `\` take two bytes. (JSON text
/// holds no raw control characters: those are already escaped inside its strings.)
pub fn escaped_len(json: &[u8]) -> usize {
    json.len() + memchr::memchr2_iter(b'"', b'\\', json).count()
}

/// A rejected request: the code to answer with and a message for a person.
pub type Rejection = (ErrorCode, String);

/// Checks an item id: 1..=256 characters of `[A-Za-z0-9_.:-]`.
pub fn validate_id(id: &str) -> Result<(), Rejection> {
    let bad = |why: &str| Err((ErrorCode::InvalidId, format!("id {why}")));
    if id.is_empty() {
        return bad("must not be empty");
    }
    if id.len() > MAX_ID_LEN {
        return bad("must be at most 256 characters");
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-')))
    {
        return Err((
            ErrorCode::InvalidId,
            format!("id may only contain A-Z a-z 0-9 _ . : - (found {c:?})"),
        ));
    }
    Ok(())
}

/// Whether a `Content-Type` value says JSON (`application/json`, with parameters or not).
pub fn is_json_content_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// Most arrays and objects nested in an item's data, the data object itself included. An item's
/// answer adds two levels (`{"item": {"data": …}}`) and a list page three, so every answer stays
/// well within the 127 levels serde_json (and with it the console and the CLI) reads by default.
pub const MAX_DATA_DEPTH: usize = 100;

/// A write body before its data is looked at: the id and the data as the client's own text,
/// borrowed from the body (no tree is built; unknown fields are skipped without allocating).
#[derive(Deserialize)]
struct RawWriteBody<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
}

fn raw_body(body: &[u8]) -> Result<RawWriteBody<'_>, Rejection> {
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        Category::Data => (
            ErrorCode::BadRequest,
            format!("body must be a JSON object with a data field ({e})"),
        ),
        _ => (
            ErrorCode::InvalidJson,
            format!("body is not valid JSON: {e}"),
        ),
    })
}

/// `PUT /api/items/{id}`'s body, checked: `{"data": {…}}` with [`compact_data`]'s rules.
pub fn parse_put_body(body: &[u8]) -> Result<PutBody, Rejection> {
    let raw = raw_body(body)?;
    Ok(PutBody {
        data: compact_data(raw.data)?,
    })
}

/// `POST /api/write`'s body, checked: a valid `id` first, then the data as for a put.
pub fn parse_write_body(body: &[u8]) -> Result<WriteBody, Rejection> {
    let raw = raw_body(body)?;
    let id = match raw.id.map(|id| serde_json::from_str::<String>(id.get())) {
        Some(Ok(id)) => id,
        Some(Err(_)) => return Err((ErrorCode::InvalidId, "id must be a string".into())),
        None => return Err((ErrorCode::InvalidId, "body must have an id field".into())),
    };
    validate_id(&id)?;
    Ok(WriteBody {
        id,
        data: compact_data(raw.data)?,
    })
}

/// Checks a write's data and makes it compact, streaming (no tree of it is ever built): a JSON
/// object, nested at most [`MAX_DATA_DEPTH`] levels, with no integer outside 64 bits (parsed,
/// it would become a float and be stored rounded, changing the client's data without a word)
/// and nothing serde_json cannot read back (a lone surrogate, a number out of range). The
/// compact text stops at [`MAX_ITEM_BYTES`]: what is longer could never be stored (413).
pub fn compact_data(data: Option<&RawValue>) -> Result<Data, Rejection> {
    let Some(raw) = data.filter(|d| d.get() != "null") else {
        return Err((
            ErrorCode::BadRequest,
            "body must have a data field holding a JSON object".into(),
        ));
    };
    let text = raw.get();
    if !text.starts_with('{') {
        return Err((ErrorCode::BadRequest, "data must be a JSON object".into()));
    }
    let scan = scan(text.as_bytes());
    if scan.depth > MAX_DATA_DEPTH {
        return Err((
            ErrorCode::BadRequest,
            format!(
                "data nests {} levels of arrays and objects; at most {MAX_DATA_DEPTH} are accepted",
                scan.depth
            ),
        ));
    }
    if let Some(n) = scan.oversized_integer {
        return Err((
            ErrorCode::BadRequest,
            format!(
                "the integer {n} does not fit in 64 bits and would be stored rounded; send it as a string"
            ),
        ));
    }
    let mut out = Limited {
        bytes: Vec::with_capacity(text.len().min(MAX_ITEM_BYTES)),
        over: false,
    };
    let mut from = serde_json::Deserializer::from_str(text);
    let mut to = serde_json::Serializer::new(&mut out);
    if let Err(e) = serde_transcode::transcode(&mut from, &mut to) {
        if out.over {
            return Err((
                ErrorCode::PayloadTooLarge,
                format!("data is over the {MAX_ITEM_BYTES}-byte item limit"),
            ));
        }
        return Err((
            ErrorCode::InvalidJson,
            format!("data is not valid JSON: {e}"),
        ));
    }
    let text = String::from_utf8(out.bytes)
        .map_err(|_| (ErrorCode::InvalidJson, "data is not UTF-8".into()))?;
    Data::from_checked(text).map_err(|e| {
        (
            ErrorCode::InvalidJson,
            format!("data is not valid JSON: {e}"),
        )
    })
}

/// A writer that refuses to grow past [`MAX_ITEM_BYTES`], and says when it did.
struct Limited {
    bytes: Vec<u8>,
    over: bool,
}

impl std::io::Write for Limited {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_ITEM_BYTES {
            self.over = true;
            return Err(std::io::Error::other("over the item limit"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What [`scan`] finds in valid JSON text.
#[derive(Debug, Default, PartialEq, Eq)]
struct Scan<'a> {
    /// The deepest nesting of arrays and objects (an object alone is 1).
    depth: usize,
    /// The first integer literal outside `i64` and `u64`.
    oversized_integer: Option<&'a str>,
}

/// One pass over valid JSON text: nesting depth and the first oversized integer.
fn scan(json: &[u8]) -> Scan<'_> {
    let mut found = Scan::default();
    let (mut i, mut depth, mut in_string) = (0, 0usize, false);
    while i < json.len() {
        let b = json[i];
        if in_string {
            match b {
                b'\\' => i += 1, // skip the escaped character
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                found.depth = found.depth.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < json.len()
                    && matches!(json[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                let token = std::str::from_utf8(&json[start..i]).unwrap_or("");
                let integer = !token.contains(['.', 'e', 'E']);
                if found.oversized_integer.is_none()
                    && integer
                    && token.parse::<i64>().is_err()
                    && token.parse::<u64>().is_err()
                {
                    found.oversized_integer = Some(token);
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// Most entity tags of an `If-Match` list that are compared; the rest are ignored.
pub const MAX_IF_MATCH_TAGS: usize = 64;

/// An `If-Match` precondition, compared as RFC 9110 §13.1.1 says: `*` matches any current
/// item, a list matches when any of its tags does, and comparison is strong, so a weak tag
/// (`W/"…"`) never matches. With no current item (absent or deleted) nothing matches.
/// Serializable: in the strong mode a precondition travels in the consensus log and is
/// compared when the write is applied, in log order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum IfMatch {
    /// `*`: the item must exist.
    Any,
    /// The item must hold one of these writes. Empty when no tag of the header could name a
    /// write of ours (weak, malformed, another server's): then nothing matches (412).
    Tags(Vec<Tag>),
}

/// One strong entity tag of an `If-Match` list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Tag {
    /// `"<version>.<region>.<ms>"`, an ETag ([`Record::etag`]): that very write.
    Write {
        version: u64,
        region: String,
        at_ms: u64,
    },
    /// `"<version>"`, the plain form older clients send: this version, written in the region
    /// answering (see [`IfMatch::matches`]).
    Version(u64),
}

impl IfMatch {
    /// Parses the header's values (a header may be sent more than once; its lists join).
    /// Quotes are optional on a strong tag; weak tags and tags that name no write are dropped.
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> IfMatch {
        let mut tags = Vec::new();
        for tag in values.into_iter().flat_map(|v| v.split(',')).map(str::trim) {
            if tag == "*" {
                return IfMatch::Any;
            }
            if tags.len() < MAX_IF_MATCH_TAGS
                && !tag.starts_with("W/")
                && let Some(parsed) = Tag::parse(tag)
            {
                tags.push(parsed);
            }
        }
        IfMatch::Tags(tags)
    }

    /// Whether `current` (`None`: absent or deleted), as held by the region `answering`,
    /// satisfies this precondition. The plain version form matches only a write accepted in
    /// `answering` itself: a version number that came from a write replicated from elsewhere
    /// may name another write there, so it fails (412) and the client must send the ETag.
    pub fn matches(&self, current: Option<&Record>, answering: &str) -> bool {
        let Some(c) = current.filter(|r| !r.is_tombstone()) else {
            return false;
        };
        match self {
            IfMatch::Any => true,
            IfMatch::Tags(tags) => tags.iter().any(|tag| tag.matches(c, answering)),
        }
    }
}

impl Tag {
    fn parse(tag: &str) -> Option<Tag> {
        let tag = tag
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(tag);
        if let Ok(v) = tag.parse::<u64>() {
            return Some(Tag::Version(v));
        }
        let mut parts = tag.split('.');
        let (version, region, at_ms) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !crate::region::is_valid_region(region) {
            return None;
        }
        Some(Tag::Write {
            version: version.parse().ok()?,
            region: region.to_owned(),
            at_ms: at_ms.parse().ok()?,
        })
    }

    fn matches(&self, c: &Record, answering: &str) -> bool {
        match self {
            Tag::Write {
                version,
                region,
                at_ms,
            } => (c.version, c.updated_in.as_str(), c.updated_at_ms) == (*version, region, *at_ms),
            Tag::Version(v) => c.version == *v && c.updated_in == answering,
        }
    }
}

/// Parses `limit` of `GET /api/items`: 1..=100, default 25.
pub fn parse_limit(value: Option<&str>) -> Result<usize, Rejection> {
    let Some(text) = value else {
        return Ok(LIST_LIMIT_DEFAULT);
    };
    match text.parse::<usize>() {
        Ok(n) if (1..=LIST_LIMIT_MAX).contains(&n) => Ok(n),
        _ => Err((
            ErrorCode::BadRequest,
            format!("limit must be an integer from 1 to {LIST_LIMIT_MAX} (got {text:?})"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn put(body: &str) -> Result<Data, Rejection> {
        parse_put_body(body.as_bytes()).map(|b| b.data)
    }

    #[test]
    fn integers_beyond_64_bits_are_refused_not_rounded() {
        for ok in [
            r#"{"data":{"n":18446744073709551615}}"#,
            r#"{"data":{"n":-9223372036854775808}}"#,
            r#"{"data":{"f":1.8446744073709552e19,"s":"18446744073709551616999","e":"\"99999999999999999999"}}"#,
        ] {
            assert!(put(ok).is_ok(), "{ok}");
        }
        // Out of range for a float too: not JSON serde_json can represent at all.
        assert_eq!(
            put(r#"{"data":{"a":[1e400000]}}"#).unwrap_err().0,
            ErrorCode::InvalidJson
        );
        for bad in [
            r#"{"data":{"n":18446744073709551616}}"#,
            r#"{"data":{"n":-9223372036854775809}}"#,
            r#"{"data":{"a":[1,2,{"deep":123456789012345678901234567890}]}}"#,
        ] {
            let (code, message) = put(bad).unwrap_err();
            assert_eq!(code, ErrorCode::BadRequest, "{bad}");
            assert!(message.contains("64 bits"), "{message}");
        }
    }

    #[test]
    fn data_is_made_compact_and_canonical_without_changing_what_it_says() {
        let data = put(
            " { \"data\" : { \"b\" : [ 1 , 2.50 , \"\\u0041\\n\" ] , \"a\" : { } } , \"x\": 1 } ",
        )
        .unwrap();
        assert_eq!(data.as_str(), r#"{"b":[1,2.5,"A\n"],"a":{}}"#);
        assert_eq!(
            data.to_map(),
            json!({"b": [1, 2.5, "A\n"], "a": {}})
                .as_object()
                .unwrap()
                .clone()
        );
        // What serde_json cannot read back is refused here, not stored for readers to choke on.
        for bad in [r#"{"data":{"s":"\ud800"}}"#, r#"{"data":{"n":1e999}}"#] {
            assert_eq!(put(bad).unwrap_err().0, ErrorCode::InvalidJson, "{bad}");
        }
    }

    #[test]
    fn data_nests_at_most_max_data_depth_levels() {
        let nest = |levels: usize| {
            let inner = "[".repeat(levels - 1) + &"]".repeat(levels - 1);
            format!(r#"{{"data":{{"a":{inner}}}}}"#)
        };
        let deepest = put(&nest(MAX_DATA_DEPTH)).unwrap();
        // Answered as an item in a list page (three levels more), a default reader reads it.
        let page = format!(r#"{{"items":[{{"data":{}}}]}}"#, deepest.as_str());
        serde_json::from_str::<serde_json::Value>(&page).expect("the console and CLI read it");
        let (code, message) = put(&nest(MAX_DATA_DEPTH + 1)).unwrap_err();
        assert_eq!(code, ErrorCode::BadRequest);
        assert!(message.contains("at most 100"), "{message}");
        // Brackets inside strings are text, not nesting.
        let text = format!(r#"{{"data":{{"s":"{}"}}}}"#, "[{".repeat(500));
        assert!(put(&text).is_ok());
    }

    #[test]
    fn compact_data_stops_at_the_item_limit() {
        let big = format!(r#"{{"data":{{"a":"{}"}}}}"#, "x".repeat(MAX_ITEM_BYTES));
        assert_eq!(put(&big).unwrap_err().0, ErrorCode::PayloadTooLarge);
        let fits = format!(
            r#"{{"data":{{"a":"{}"}}}}"#,
            "x".repeat(MAX_ITEM_BYTES - 100)
        );
        assert!(put(&fits).is_ok());
    }

    #[test]
    fn page_costs_count_what_lambda_escapes_again() {
        assert_eq!(escaped_len(br#"{"a":"\\"}"#), 10 + 6);
        let data = Data::try_from(json!({"q": "\"\"\""})).unwrap();
        let record = Record::next(
            "x",
            None,
            Some(data.clone()),
            "us-east-1",
            1_764_201_234_567,
        );
        let item = serde_json::to_vec(&record.to_item().unwrap()).unwrap();
        let stored = serde_json::to_vec(&record).unwrap();
        for cost in [page_cost(&stored), item_page_cost("x", &data, "us-east-1")] {
            assert!(
                cost > escaped_len(&item),
                "{cost} vs {}",
                escaped_len(&item)
            );
        }
    }

    #[test]
    fn ids() {
        assert!(validate_id("a").is_ok());
        assert!(validate_id("A-z_0.9:x").is_ok());
        assert!(validate_id(&"x".repeat(256)).is_ok());
        for bad in ["", "a/b", "é", "a b", "a#b", "a?b", "%2F"] {
            assert_eq!(
                validate_id(bad).unwrap_err().0,
                ErrorCode::InvalidId,
                "{bad:?}"
            );
        }
        assert_eq!(
            validate_id(&"x".repeat(257)).unwrap_err().0,
            ErrorCode::InvalidId
        );
    }

    #[test]
    fn content_types() {
        assert!(is_json_content_type("application/json"));
        assert!(is_json_content_type("Application/JSON; charset=utf-8"));
        assert!(!is_json_content_type("text/plain"));
        assert!(!is_json_content_type("application/jsonx"));
        assert!(!is_json_content_type(""));
    }

    #[test]
    fn bodies() {
        assert_eq!(put("{").unwrap_err().0, ErrorCode::InvalidJson);
        assert_eq!(put(r#"{"data": {"a": 1}}"#).unwrap().to_map()["a"], 1);
        for bad in [
            r#"{"data": [1]}"#,
            r#"{"data": "x"}"#,
            r#"{"data": null}"#,
            "{}",
            "[1]",
            "null",
            r#"{"data": {}, "data": {}}"#,
        ] {
            assert_eq!(put(bad).unwrap_err().0, ErrorCode::BadRequest, "{bad}");
        }
        let write = |body: &str| parse_write_body(body.as_bytes());
        assert_eq!(write(r#"{"id": "ok", "data": {}}"#).unwrap().id, "ok");
        for bad in [
            r#"{"id": 5, "data": {}}"#,
            r#"{"id": "a/b", "data": {}}"#,
            r#"{"data": {}}"#,
        ] {
            assert_eq!(write(bad).unwrap_err().0, ErrorCode::InvalidId, "{bad}");
        }
        // The id is checked before the data.
        assert_eq!(
            write(r#"{"id": "a/b"}"#).unwrap_err().0,
            ErrorCode::InvalidId
        );
        assert_eq!(
            write(r#"{"id": "a"}"#).unwrap_err().0,
            ErrorCode::BadRequest
        );
    }

    #[test]
    fn if_match_compares_strongly_and_any_tag_of_a_list_matches() {
        use Tag::{Version, Write};
        let parse = |v: &str| IfMatch::parse([v]);
        assert_eq!(parse("\"3\""), IfMatch::Tags(vec![Version(3)]));
        assert_eq!(parse("3"), IfMatch::Tags(vec![Version(3)]));
        assert_eq!(parse("*"), IfMatch::Any);
        // Weak tags never match (RFC 9110 13.1.1 compares strongly); nor does what names no write.
        for never in [
            "W/\"4\"",
            "\"abc\"",
            "\"3.us-east-1.x\"",
            "\"3.east.7\"",
            "",
        ] {
            assert_eq!(parse(never), IfMatch::Tags(vec![]), "{never}");
        }
        let east = Record::next("a", None, Some(Data::new()), "us-east-1", 7);
        let west = Record::next("a", None, Some(Data::new()), "us-west-2", 7);
        let tag = parse(&east.etag());
        assert!(tag.matches(Some(&east), "us-west-2"));
        // Same version, another region's write: the ETag refuses it wherever it is asked.
        assert!(!tag.matches(Some(&west), "us-west-2"));
        assert!(!tag.matches(Some(&west), "us-east-1"));
        let v = |n| IfMatch::Tags(vec![Version(n)]);
        assert!(v(1).matches(Some(&east), "us-east-1"));
        assert!(!v(1).matches(Some(&east), "us-west-2"));
        assert!(!v(2).matches(Some(&east), "us-east-1"));
        assert!(!v(1).matches(None, "us-east-1"));
        assert!(IfMatch::Any.matches(Some(&west), "us-east-1"));
        assert!(!IfMatch::Any.matches(None, "us-east-1"));
        let tombstone = Record::next("a", Some(&east), None, "us-east-1", 8);
        assert!(!IfMatch::Any.matches(Some(&tombstone), "us-east-1"));
        assert!(!IfMatch::Tags(vec![]).matches(Some(&east), "us-east-1"));
        // A list matches when any of its tags does, in one header or across repeated ones.
        let list = format!("W/{}, \"9\", {}", east.etag(), west.etag());
        assert!(parse(&list).matches(Some(&west), "us-east-1"));
        assert!(
            !parse(&list).matches(Some(&east), "us-east-1"),
            "only weakly"
        );
        let repeated = IfMatch::parse(["\"9\"", east.etag().as_str()]);
        assert!(repeated.matches(Some(&east), "us-west-2"));
        assert!(
            matches!(repeated, IfMatch::Tags(ref t) if t.len() == 2 && matches!(t[1], Write { .. }))
        );
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit(None).unwrap(), 25);
        assert_eq!(parse_limit(Some("100")).unwrap(), 100);
        for bad in ["0", "101", "-1", "x", ""] {
            assert_eq!(parse_limit(Some(bad)).unwrap_err().0, ErrorCode::BadRequest);
        }
    }
}
