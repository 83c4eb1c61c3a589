//! The replication wire format, and how peers prove who they are.
//!
//! A body is a binary frame: a fixed header, then entries of `(u64 number, u32 length, bytes)`,
//! all big-endian. An entry's bytes are a record exactly as the sender stores it (JSON), so any
//! item the API accepted passes through however deeply nested: nothing wraps it in more JSON,
//! and the receiver parses each record on its own, at the same depth the API parsed it.
//!
//! Authentication is HMAC-SHA256 with a replication key both regions hold and never send. The
//! puller signs its request (peer name, a fresh nonce, the path and query); the server checks it
//! in constant time and signs its answer over the same nonce and the body, so a process that
//! takes a peer's port learns no secret and cannot forge or replay an answer.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Which region is asking (a configured peer's name).
pub const PEER_HEADER: &str = "x-tandem-peer";
/// A fresh random value per request, echoed in the answer's signature.
pub const NONCE_HEADER: &str = "x-tandem-nonce";
/// HMAC of the request (on requests) or of the nonce and body (on answers).
pub const SIGNATURE_HEADER: &str = "x-tandem-signature";
/// Content type of a frame.
pub const CONTENT_TYPE: &str = "application/x-tandem-replication";

const MAGIC: &[u8; 4] = b"TDR1";
const NO_NEXT: u32 = u32::MAX;

/// One answer of the replication routes: an outbox page, a state page or the digests.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frame {
    /// The sender's data identity.
    pub incarnation: u64,
    /// The sender's latest outbox sequence number.
    pub head: u64,
    /// The sender's outbox floor (entries up to it were compacted).
    pub floor: u64,
    /// The last sequence number an outbox page covers.
    pub through: u64,
    /// Where a state page continues, when there is more.
    pub next: Option<String>,
    /// `(sequence number or bucket, bytes)`.
    pub entries: Vec<(u64, Vec<u8>)>,
}

/// Why a frame was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("not a replication frame")]
    Magic,
    #[error("frame truncated")]
    Truncated,
    #[error("frame has {0} trailing bytes")]
    Trailing(usize),
    #[error("frame's continuation id is not UTF-8")]
    Utf8,
}

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let size: usize = self.entries.iter().map(|(_, b)| 12 + b.len()).sum();
        let mut out = Vec::with_capacity(48 + size);
        out.extend_from_slice(MAGIC);
        for n in [self.incarnation, self.head, self.floor, self.through] {
            out.extend_from_slice(&n.to_be_bytes());
        }
        match &self.next {
            Some(next) => {
                out.extend_from_slice(&(next.len() as u32).to_be_bytes());
                out.extend_from_slice(next.as_bytes());
            }
            None => out.extend_from_slice(&NO_NEXT.to_be_bytes()),
        }
        out.extend_from_slice(&(self.entries.len() as u32).to_be_bytes());
        for (n, bytes) in &self.entries {
            out.extend_from_slice(&n.to_be_bytes());
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        out
    }

    /// Parses a frame; never panics and never allocates more than the input's size.
    pub fn decode(input: &[u8]) -> Result<Frame, WireError> {
        let mut r = Reader(input);
        if r.take(4)? != MAGIC {
            return Err(WireError::Magic);
        }
        let mut frame = Frame {
            incarnation: r.u64()?,
            head: r.u64()?,
            floor: r.u64()?,
            through: r.u64()?,
            ..Frame::default()
        };
        let next_len = r.u32()?;
        if next_len != NO_NEXT {
            let bytes = r.take(next_len as usize)?;
            frame.next = Some(
                std::str::from_utf8(bytes)
                    .map_err(|_| WireError::Utf8)?
                    .to_owned(),
            );
        }
        let count = r.u32()?;
        for _ in 0..count {
            let n = r.u64()?;
            let len = r.u32()? as usize;
            frame.entries.push((n, r.take(len)?.to_vec()));
        }
        if !r.0.is_empty() {
            return Err(WireError::Trailing(r.0.len()));
        }
        Ok(frame)
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u64(&mut self) -> Result<u64, WireError> {
        let b = self.take(8)?;
        Ok(u64::from_be_bytes(
            b.try_into().map_err(|_| WireError::Truncated)?,
        ))
    }

    fn u32(&mut self) -> Result<u32, WireError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes(
            b.try_into().map_err(|_| WireError::Truncated)?,
        ))
    }
}

/// The replication key shared by the regions of one stack.
#[derive(Clone)]
pub struct Key(Vec<u8>);

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(…)")
    }
}

impl Key {
    pub fn new(secret: &str) -> Key {
        Key(secret.as_bytes().to_vec())
    }

    /// HMAC over each part, each prefixed by its length so parts cannot run into each other.
    fn mac(&self, parts: &[&[u8]]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key size");
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    fn sign(&self, parts: &[&[u8]]) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(parts).finalize().into_bytes())
    }

    /// Constant-time check of a signature.
    fn verify(&self, parts: &[&[u8]], signature: &str) -> bool {
        let Ok(given) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        self.mac(parts).verify_slice(&given).is_ok()
    }

    /// The signature a puller sends with a request.
    pub fn sign_request(&self, peer: &str, nonce: &str, path_and_query: &str) -> String {
        self.sign(&[
            b"request",
            peer.as_bytes(),
            nonce.as_bytes(),
            path_and_query.as_bytes(),
        ])
    }

    pub fn verify_request(
        &self,
        peer: &str,
        nonce: &str,
        path_and_query: &str,
        signature: &str,
    ) -> bool {
        self.verify(
            &[
                b"request",
                peer.as_bytes(),
                nonce.as_bytes(),
                path_and_query.as_bytes(),
            ],
            signature,
        )
    }

    /// The signature a server sends with its answer to the request that carried `nonce`.
    pub fn sign_response(&self, nonce: &str, body: &[u8]) -> String {
        self.sign(&[b"response", nonce.as_bytes(), body])
    }

    pub fn verify_response(&self, nonce: &str, body: &[u8], signature: &str) -> bool {
        self.verify(&[b"response", nonce.as_bytes(), body], signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn signatures_bind_the_key_the_nonce_and_the_body() {
        let (k, other) = (Key::new("k"), Key::new("k2"));
        let s = k.sign_request("us-east-1", "n1", "/_replication/changes?after=1");
        assert!(k.verify_request("us-east-1", "n1", "/_replication/changes?after=1", &s));
        assert!(!other.verify_request("us-east-1", "n1", "/_replication/changes?after=1", &s));
        assert!(!k.verify_request("us-west-2", "n1", "/_replication/changes?after=1", &s));
        assert!(!k.verify_request("us-east-1", "n2", "/_replication/changes?after=1", &s));
        assert!(!k.verify_request("us-east-1", "n1", "/_replication/changes?after=2", &s));
        assert!(!k.verify_request("us-east-1", "n1", "/", "not base64 !"));
        let r = k.sign_response("n1", b"body");
        assert!(k.verify_response("n1", b"body", &r));
        assert!(
            !k.verify_response("n2", b"body", &r),
            "replayed to another request"
        );
        assert!(!k.verify_response("n1", b"bodx", &r));
        // A request signature is not an answer signature.
        assert!(!k.verify_response("n1", b"", &k.sign_request("", "n1", "")));
    }

    fn arb_frame() -> impl Strategy<Value = Frame> {
        (
            any::<[u64; 4]>(),
            prop::option::of("[a-z0-9:.-]{0,20}"),
            prop::collection::vec(
                (any::<u64>(), prop::collection::vec(any::<u8>(), 0..64)),
                0..8,
            ),
        )
            .prop_map(
                |([incarnation, head, floor, through], next, entries)| Frame {
                    incarnation,
                    head,
                    floor,
                    through,
                    next,
                    entries,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn frames_round_trip(frame in arb_frame()) {
            prop_assert_eq!(Frame::decode(&frame.encode()), Ok(frame));
        }

        /// Whatever a peer sends, decoding answers Ok or Err, never panics.
        #[test]
        fn any_bytes_decode_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..256), cut in any::<usize>()) {
            let _ = Frame::decode(&bytes);
            let mut valid = arb_frame_bytes();
            valid.truncate(cut % (valid.len() + 1));
            let _ = Frame::decode(&valid);
        }
    }

    fn arb_frame_bytes() -> Vec<u8> {
        Frame {
            incarnation: 1,
            head: 2,
            floor: 0,
            through: 2,
            next: Some("k".into()),
            entries: vec![(1, b"{}".to_vec()), (2, vec![0; 10])],
        }
        .encode()
    }

    #[test]
    fn a_frame_claiming_more_entries_than_it_holds_is_refused() {
        let mut bytes = Frame::default().encode();
        let n = bytes.len();
        bytes[n - 4..].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(Frame::decode(&bytes), Err(WireError::Truncated));
        assert_eq!(Frame::decode(b"nope"), Err(WireError::Magic));
    }
}
