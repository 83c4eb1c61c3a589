//! The replication wire format, and how peers prove who they are.
//!
//! A body is a binary frame: a fixed header, then entries of `(u64 number, u32 length, bytes)`,
//! all big-endian. An entry's bytes are a record exactly as the sender stores it (JSON), so any
//! item the API accepted passes through however deeply nested: nothing wraps it in more JSON,
//! and the receiver parses each record on its own, at the same depth the API parsed it.
//!
//! Authentication is HMAC-SHA256 with a replication key the regions and their supervisor hold
//! and never send (docs/contract.md, "Replication"). A requester (a peer region, or the
//! supervisor as [`CONTROL_IDENTITY`]) signs its request: its identity, the region it is meant
//! for, that region's boot id, a sequence number, a fresh nonce, the method, path and query, and
//! a hash of the body. The server checks it in constant time and takes each sequence number
//! once ([`Window`]), and only for its own boot id, so a captured request replayed later fails:
//! to the same region (the number was used), to a restarted one (another boot id), or to another
//! region (another name). Answers are signed over the request's nonce and the body, so a process
//! that takes a region's port learns no secret and cannot forge or replay an answer. A region
//! also proves it holds the key before anyone sends it a secret ([`Key::prove`]).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Which region is asking (a configured peer's name), or [`CONTROL_IDENTITY`].
pub const PEER_HEADER: &str = "x-tandem-peer";
/// A fresh random value per request, echoed in the answer's signature.
pub const NONCE_HEADER: &str = "x-tandem-nonce";
/// HMAC of the request (on requests) or of the nonce and body (on answers).
pub const SIGNATURE_HEADER: &str = "x-tandem-signature";
/// The requester's sequence number with this server: each is accepted once ([`Window`]).
pub const SEQ_HEADER: &str = "x-tandem-seq";
/// A server process's boot id: on a request, the one it was signed for; on a refusal, the
/// server's own, with [`SEQ_HEADER`] set to the highest number it took from that requester.
pub const BOOT_HEADER: &str = "x-tandem-boot";
/// A region's answer to a proof request: [`Key::prove`] of its name and the asker's nonce.
pub const PROOF_HEADER: &str = "x-tandem-proof";
/// The identity the supervisor (the control API, `tandem verify`) signs with.
pub const CONTROL_IDENTITY: &str = "control";
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
    fn mac<P: AsRef<[u8]>>(&self, parts: &[P]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key size");
        for part in parts {
            let part = part.as_ref();
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac
    }

    fn sign<P: AsRef<[u8]>>(&self, parts: &[P]) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(parts).finalize().into_bytes())
    }

    /// Constant-time check of a signature.
    fn verify<P: AsRef<[u8]>>(&self, parts: &[P], signature: &str) -> bool {
        let Ok(given) = URL_SAFE_NO_PAD.decode(signature) else {
            return false;
        };
        self.mac(parts).verify_slice(&given).is_ok()
    }

    /// The signature a requester sends with `request`.
    pub fn sign_request(&self, request: &SignedRequest<'_>) -> String {
        self.sign(&request.parts())
    }

    /// Whether `signature` is `request`'s (constant-time).
    pub fn verify_request(&self, request: &SignedRequest<'_>, signature: &str) -> bool {
        self.verify(&request.parts(), signature)
    }

    /// The signature a server sends with its answer to the request that carried `nonce`.
    pub fn sign_response(&self, nonce: &str, body: &[u8]) -> String {
        self.sign(&[&b"response"[..], nonce.as_bytes(), body])
    }

    pub fn verify_response(&self, nonce: &str, body: &[u8], signature: &str) -> bool {
        self.verify(&[&b"response"[..], nonce.as_bytes(), body], signature)
    }

    /// A region's proof that it holds the key: its name and the asker's fresh nonce, signed.
    /// Only a process holding the key answers it, so a process that took a region's port
    /// cannot; the edge and the supervisor send a secret to a port only after it did.
    pub fn prove(&self, region: &str, nonce: &str) -> String {
        self.sign(&[&b"proof"[..], region.as_bytes(), nonce.as_bytes()])
    }

    pub fn verify_proof(&self, region: &str, nonce: &str, proof: &str) -> bool {
        self.verify(&[&b"proof"[..], region.as_bytes(), nonce.as_bytes()], proof)
    }
}

/// What a signed request binds: who asks, whom, in which session, and what.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    pub identity: &'a str,
    /// The region the request is meant for: a capture cannot be replayed to another one.
    pub target: &'a str,
    /// The target process's boot id: a capture cannot be replayed after it restarts.
    pub boot: u64,
    /// Used once per boot id ([`Window`]): a capture cannot be replayed to the same process.
    pub seq: u64,
    pub nonce: &'a str,
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub body: &'a [u8],
}

impl SignedRequest<'_> {
    fn parts(&self) -> [Vec<u8>; 9] {
        use sha2::Digest as _;
        [
            b"request".to_vec(),
            self.identity.as_bytes().to_vec(),
            self.target.as_bytes().to_vec(),
            self.boot.to_be_bytes().to_vec(),
            self.seq.to_be_bytes().to_vec(),
            self.nonce.as_bytes().to_vec(),
            self.method.as_bytes().to_vec(),
            self.path_and_query.as_bytes().to_vec(),
            Sha256::digest(self.body).to_vec(),
        ]
    }
}

/// The sequence numbers one requester has used with this server process: a sliding window of
/// 64 (the anti-replay window of RFC 4303, section 3.4.3). A number is accepted once, and only
/// when it is above the highest seen less 64, so requests may arrive a little out of order
/// (two calls of one requester at once) but none twice. It lives in memory, with the boot id:
/// a restarted server has a new boot id, which every old request names wrongly.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    highest: u64,
    /// Bit `i`: `highest - i` was seen.
    seen: u64,
}

impl Window {
    /// Takes `seq` if it was not seen and is not too old.
    pub fn accept(&mut self, seq: u64) -> bool {
        if seq == 0 {
            return false;
        }
        if seq > self.highest {
            let shift = seq - self.highest;
            self.seen = if shift >= 64 { 0 } else { self.seen << shift };
            self.seen |= 1;
            self.highest = seq;
            return true;
        }
        let offset = self.highest - seq;
        if offset >= 64 || self.seen & (1 << offset) != 0 {
            return false;
        }
        self.seen |= 1 << offset;
        true
    }

    /// The highest number taken: a requester that lost count goes on after it.
    pub fn highest(&self) -> u64 {
        self.highest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn request<'a>(path: &'a str) -> SignedRequest<'a> {
        SignedRequest {
            identity: "us-east-1",
            target: "us-west-2",
            boot: 7,
            seq: 1,
            nonce: "n1",
            method: "GET",
            path_and_query: path,
            body: b"",
        }
    }

    #[test]
    fn signatures_bind_the_key_the_session_and_the_request() {
        let (k, other) = (Key::new("k"), Key::new("k2"));
        let r = request("/_replication/changes?after=1");
        let s = k.sign_request(&r);
        assert!(k.verify_request(&r, &s));
        assert!(!other.verify_request(&r, &s));
        for changed in [
            SignedRequest {
                identity: "us-west-2",
                ..r
            },
            SignedRequest {
                target: "eu-west-1",
                ..r
            },
            SignedRequest { boot: 8, ..r },
            SignedRequest { seq: 2, ..r },
            SignedRequest { nonce: "n2", ..r },
            SignedRequest { method: "PUT", ..r },
            SignedRequest {
                path_and_query: "/_replication/changes?after=2",
                ..r
            },
            SignedRequest { body: b"{}", ..r },
        ] {
            assert!(!k.verify_request(&changed, &s), "{changed:?}");
        }
        assert!(!k.verify_request(&r, "not base64 !"));
        let a = k.sign_response("n1", b"body");
        assert!(k.verify_response("n1", b"body", &a));
        assert!(
            !k.verify_response("n2", b"body", &a),
            "replayed to another request"
        );
        assert!(!k.verify_response("n1", b"bodx", &a));
        // A proof is neither, and names its region.
        let p = k.prove("us-west-2", "n1");
        assert!(k.verify_proof("us-west-2", "n1", &p));
        assert!(!k.verify_proof("us-east-1", "n1", &p));
        assert!(!k.verify_proof("us-west-2", "n2", &p));
        assert!(!other.verify_proof("us-west-2", "n1", &p));
        assert!(!k.verify_response("n1", b"", &p));
    }

    #[test]
    fn a_window_takes_each_number_once_and_nothing_too_old() {
        let mut w = Window::default();
        assert!(!w.accept(0));
        assert!(w.accept(1));
        assert!(!w.accept(1), "a replay");
        assert!(w.accept(3));
        assert!(w.accept(2), "a little out of order");
        assert!(!w.accept(2));
        assert!(w.accept(100));
        assert!(!w.accept(36), "64 or more behind the highest");
        assert!(w.accept(37));
        assert!(!w.accept(37));
        assert!(
            !w.accept(3),
            "seen before the window moved, and too old now"
        );
        assert_eq!(w.highest(), 100);
        assert!(w.accept(u64::MAX));
        assert!(!w.accept(u64::MAX));
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
