//! Request validation shared by every store: what a client may send.
//!
//! Every failure here is the client's mistake and maps to a 4xx code, never a 5xx.

use crate::error::ErrorCode;
use crate::item::Data;
use crate::item::Record;
use serde_json::Value;

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
/// Most bytes of items in one `GET /api/items` page (at least one item is always sent): a
/// buffered Lambda response carries at most 6 MB, and a 5xx there would make the edge fail
/// over for what is no outage.
pub const LIST_PAGE_MAX_BYTES: usize = 5 * 1024 * 1024;

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

/// Parses a JSON body, telling malformed JSON (`invalid_json`) from the wrong shape. An
/// integer that does not fit in 64 bits is refused (`bad_request`): parsed, it would become a
/// float and be stored rounded, which would change the client's data without a word.
pub fn parse_json(body: &[u8]) -> Result<Value, Rejection> {
    let value = serde_json::from_slice(body).map_err(|e| {
        (
            ErrorCode::InvalidJson,
            format!("body is not valid JSON: {e}"),
        )
    })?;
    if let Some(n) = oversized_integer(body) {
        return Err((
            ErrorCode::BadRequest,
            format!(
                "the integer {n} does not fit in 64 bits and would be stored rounded; send it as a string"
            ),
        ));
    }
    Ok(value)
}

/// The first integer literal of valid JSON text `json` outside `i64` and `u64`, if any.
fn oversized_integer(json: &[u8]) -> Option<&str> {
    let mut i = 0;
    let mut in_string = false;
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
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < json.len()
                    && matches!(json[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                let token = std::str::from_utf8(&json[start..i]).ok()?;
                let integer = !token.contains(['.', 'e', 'E']);
                if integer && token.parse::<i64>().is_err() && token.parse::<u64>().is_err() {
                    return Some(token);
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Takes `data` out of a write body: it must be a JSON object.
pub fn take_data(body: &mut Value) -> Result<Data, Rejection> {
    let Some(obj) = body.as_object_mut() else {
        return Err((ErrorCode::BadRequest, "body must be a JSON object".into()));
    };
    match obj.remove("data") {
        Some(Value::Object(data)) => Ok(data),
        Some(_) => Err((ErrorCode::BadRequest, "data must be a JSON object".into())),
        None => Err((ErrorCode::BadRequest, "body must have a data field".into())),
    }
}

/// Takes `id` out of a `POST /api/write` body.
pub fn take_id(body: &Value) -> Result<String, Rejection> {
    match body.get("id") {
        Some(Value::String(id)) => {
            validate_id(id)?;
            Ok(id.clone())
        }
        Some(_) => Err((ErrorCode::InvalidId, "id must be a string".into())),
        None => Err((ErrorCode::InvalidId, "body must have an id field".into())),
    }
}

/// An `If-Match` precondition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: the item must exist.
    Any,
    /// `"<version>.<region>.<ms>"`, an ETag ([`Record::etag`]): the item must hold that very
    /// write.
    Write {
        version: u64,
        region: String,
        at_ms: u64,
    },
    /// `"<version>"`, the plain form older clients send: the item must be at this version,
    /// and that version must have been written in the region answering (see [`IfMatch::matches`]).
    Version(u64),
    /// A value that can name no write of ours; it never matches (412, as HTTP says).
    Never,
}

impl IfMatch {
    /// Parses the header value. Quotes are optional, `W/` weak tags are accepted, and a list
    /// matches if any entry does, as RFC 9110 allows; we keep only the first entry that parses.
    pub fn parse(value: &str) -> IfMatch {
        for tag in value.split(',').map(str::trim) {
            if tag == "*" {
                return IfMatch::Any;
            }
            let tag = tag.strip_prefix("W/").unwrap_or(tag);
            let tag = tag
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .unwrap_or(tag);
            if let Some(parsed) = Self::parse_tag(tag) {
                return parsed;
            }
        }
        IfMatch::Never
    }

    fn parse_tag(tag: &str) -> Option<IfMatch> {
        if let Ok(v) = tag.parse::<u64>() {
            return Some(IfMatch::Version(v));
        }
        let mut parts = tag.split('.');
        let (version, region, at_ms) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !crate::region::is_valid_region(region) {
            return None;
        }
        Some(IfMatch::Write {
            version: version.parse().ok()?,
            region: region.to_owned(),
            at_ms: at_ms.parse().ok()?,
        })
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
            IfMatch::Write {
                version,
                region,
                at_ms,
            } => (c.version, c.updated_in.as_str(), c.updated_at_ms) == (*version, region, *at_ms),
            IfMatch::Version(v) => c.version == *v && c.updated_in == answering,
            IfMatch::Never => false,
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

    #[test]
    fn integers_beyond_64_bits_are_refused_not_rounded() {
        for ok in [
            r#"{"data":{"n":18446744073709551615}}"#,
            r#"{"data":{"n":-9223372036854775808}}"#,
            r#"{"data":{"f":1.8446744073709552e19,"s":"18446744073709551616999","e":"\"99999999999999999999"}}"#,
        ] {
            assert!(parse_json(ok.as_bytes()).is_ok(), "{ok}");
        }
        // Out of range for a float too: not JSON serde_json can represent at all.
        assert_eq!(
            parse_json(b"[1e400000]").unwrap_err().0,
            ErrorCode::InvalidJson
        );
        for bad in [
            r#"{"data":{"n":18446744073709551616}}"#,
            r#"{"data":{"n":-9223372036854775809}}"#,
            r#"{"data":{"a":[1,2,{"deep":123456789012345678901234567890}]}}"#,
        ] {
            let (code, message) = parse_json(bad.as_bytes()).unwrap_err();
            assert_eq!(code, ErrorCode::BadRequest, "{bad}");
            assert!(message.contains("64 bits"), "{message}");
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
        assert_eq!(parse_json(b"{").unwrap_err().0, ErrorCode::InvalidJson);
        let mut v = parse_json(br#"{"data": {"a": 1}}"#).unwrap();
        assert_eq!(take_data(&mut v).unwrap()["a"], 1);
        for bad in [
            json!({"data": [1]}),
            json!({"data": "x"}),
            json!({}),
            json!([1]),
            json!(null),
        ] {
            assert_eq!(
                take_data(&mut bad.clone()).unwrap_err().0,
                ErrorCode::BadRequest,
                "{bad}"
            );
        }
        assert_eq!(take_id(&json!({"id": "ok"})).unwrap(), "ok");
        assert_eq!(
            take_id(&json!({"id": 5})).unwrap_err().0,
            ErrorCode::InvalidId
        );
        assert_eq!(
            take_id(&json!({"id": "a/b"})).unwrap_err().0,
            ErrorCode::InvalidId
        );
        assert_eq!(take_id(&json!({})).unwrap_err().0, ErrorCode::InvalidId);
    }

    #[test]
    fn if_match() {
        assert_eq!(IfMatch::parse("\"3\""), IfMatch::Version(3));
        assert_eq!(IfMatch::parse("3"), IfMatch::Version(3));
        assert_eq!(IfMatch::parse("W/\"4\""), IfMatch::Version(4));
        assert_eq!(IfMatch::parse("*"), IfMatch::Any);
        assert_eq!(IfMatch::parse("\"abc\""), IfMatch::Never);
        assert_eq!(IfMatch::parse("\"3.us-east-1.x\""), IfMatch::Never);
        assert_eq!(IfMatch::parse("\"3.east.7\""), IfMatch::Never);
        let east = Record::next("a", None, Some(Default::default()), "us-east-1", 7);
        let west = Record::next("a", None, Some(Default::default()), "us-west-2", 7);
        let tag = IfMatch::parse(&east.etag());
        assert!(tag.matches(Some(&east), "us-west-2"));
        // Same version, another region's write: the ETag refuses it wherever it is asked.
        assert!(!tag.matches(Some(&west), "us-west-2"));
        assert!(!tag.matches(Some(&west), "us-east-1"));
        assert!(IfMatch::Version(1).matches(Some(&east), "us-east-1"));
        assert!(!IfMatch::Version(1).matches(Some(&east), "us-west-2"));
        assert!(!IfMatch::Version(2).matches(Some(&east), "us-east-1"));
        assert!(!IfMatch::Version(1).matches(None, "us-east-1"));
        assert!(IfMatch::Any.matches(Some(&west), "us-east-1"));
        assert!(!IfMatch::Any.matches(None, "us-east-1"));
        let tombstone = Record::next("a", Some(&east), None, "us-east-1", 8);
        assert!(!IfMatch::Any.matches(Some(&tombstone), "us-east-1"));
        assert!(!IfMatch::Never.matches(Some(&east), "us-east-1"));
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
