//! Admin faults: what a region can be told to do to its data routes.

use serde::{Deserialize, Deserializer, Serialize};

/// The body of `PUT /api/admin/fault`: `{"mode": "error", "status": 503}`,
/// `{"mode": "slow", "latency_ms": 3000}` or `{"mode": "none"}`, each with an optional
/// `duration_s` after which the fault clears itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
// Decoding goes through `FaultWire`, which also refuses unknown fields.
#[serde(tag = "mode", rename_all = "snake_case", try_from = "FaultWire")]
pub enum Fault {
    /// Data routes answer `status` (500, 502, 503 or 504).
    Error {
        #[cfg_attr(feature = "openapi", schema(minimum = 500, maximum = 504))]
        status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_s: Option<u64>,
    },
    /// Data routes answer after `latency_ms` more milliseconds.
    Slow {
        latency_ms: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_s: Option<u64>,
    },
    /// No fault.
    None {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_s: Option<u64>,
    },
}

/// [`Fault`]'s wire form, flat, for decoding. Derived decoding of an internally tagged enum
/// buffers the whole body in a generic tree first, which cost the console 4 KB after brotli;
/// this reads the fields once and [`Fault::try_from`] applies the same rules: the fields of
/// the mode, no others, and no `null` for a field that is not optional. (Like every derived
/// struct, it also reads the fields as an array in declaration order.)
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultWire {
    mode: Mode,
    #[serde(default, deserialize_with = "present")]
    status: Option<u16>,
    #[serde(default, deserialize_with = "present")]
    latency_ms: Option<u64>,
    #[serde(default)]
    duration_s: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Mode {
    Error,
    Slow,
    None,
}

/// A field that may be absent but, when present, is not `null`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

impl TryFrom<FaultWire> for Fault {
    type Error = &'static str;

    fn try_from(w: FaultWire) -> Result<Fault, &'static str> {
        let duration_s = w.duration_s;
        match (w.mode, w.status, w.latency_ms) {
            (Mode::Error, Some(status), None) => Ok(Fault::Error { status, duration_s }),
            (Mode::Slow, None, Some(latency_ms)) => Ok(Fault::Slow {
                latency_ms,
                duration_s,
            }),
            (Mode::None, None, None) => Ok(Fault::None { duration_s }),
            (Mode::Error, None, _) => Err("mode error needs a status"),
            (Mode::Slow, _, None) => Err("mode slow needs a latency_ms"),
            (_, Some(_), _) => Err("only mode error takes a status"),
            (_, _, Some(_)) => Err("only mode slow takes a latency_ms"),
        }
    }
}

/// The statuses an error fault may use: the ones CloudFront fails over on.
pub const FAULT_STATUSES: [u16; 4] = [500, 502, 503, 504];
/// Longest injected latency: ten minutes is longer than any edge timeout.
pub const MAX_LATENCY_MS: u64 = 600_000;
/// Longest fault duration: a day.
pub const MAX_DURATION_S: u64 = 86_400;

impl Fault {
    /// No fault.
    pub const NONE: Fault = Fault::None { duration_s: None };

    /// Checks the values a client sent; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Fault::Error { status, .. } if !FAULT_STATUSES.contains(&status) => Err(format!(
                "status must be one of 500, 502, 503, 504 (got {status})"
            )),
            Fault::Slow { latency_ms, .. } if latency_ms > MAX_LATENCY_MS => Err(format!(
                "latency_ms must be at most {MAX_LATENCY_MS} (got {latency_ms})"
            )),
            _ => match self.duration_s() {
                Some(d) if d == 0 || d > MAX_DURATION_S => Err(format!(
                    "duration_s must be between 1 and {MAX_DURATION_S} (got {d})"
                )),
                _ => Ok(()),
            },
        }
    }

    /// How long the fault lasts, if it clears itself.
    pub fn duration_s(&self) -> Option<u64> {
        match *self {
            Fault::Error { duration_s, .. }
            | Fault::Slow { duration_s, .. }
            | Fault::None { duration_s } => duration_s,
        }
    }

    /// Whether this is no fault at all.
    pub fn is_none(&self) -> bool {
        matches!(self, Fault::None { .. })
    }
}

/// A region's current fault, as `GET /api/admin/fault` and health report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FaultState {
    pub fault: Fault,
    /// When a self-clearing fault ends (RFC 3339), else null.
    pub expires_at: Option<String>,
    pub region: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_forms() {
        let f: Fault = serde_json::from_value(json!({"mode": "error", "status": 503})).unwrap();
        assert_eq!(
            f,
            Fault::Error {
                status: 503,
                duration_s: None
            }
        );
        let f: Fault =
            serde_json::from_value(json!({"mode": "slow", "latency_ms": 5, "duration_s": 2}))
                .unwrap();
        assert_eq!(f.duration_s(), Some(2));
        assert_eq!(
            serde_json::to_value(Fault::NONE).unwrap(),
            json!({"mode": "none"})
        );
        assert!(serde_json::from_value::<Fault>(json!({"mode": "melt"})).is_err());
        assert!(serde_json::from_value::<Fault>(json!({"mode": "none", "x": 1})).is_err());
    }

    #[test]
    fn each_mode_takes_its_fields_and_no_others() {
        let rejected = [
            json!({"status": 503}),
            json!({"mode": "error"}),
            json!({"mode": "error", "status": null}),
            json!({"mode": "error", "status": 503, "latency_ms": 5}),
            json!({"mode": "slow"}),
            json!({"mode": "slow", "latency_ms": 5, "status": 503}),
            json!({"mode": "none", "status": 503}),
            json!({"mode": "none", "latency_ms": null}),
            json!({"mode": "none", "duration_s": "5"}),
            json!({"mode": "None"}),
        ];
        for body in rejected {
            assert!(
                serde_json::from_value::<Fault>(body.clone()).is_err(),
                "{body}"
            );
        }
        let none = serde_json::from_value::<Fault>(json!({"mode": "none", "duration_s": null}));
        assert_eq!(none.unwrap(), Fault::NONE);
        for fault in [
            Fault::Error {
                status: 500,
                duration_s: Some(3),
            },
            Fault::Slow {
                latency_ms: 0,
                duration_s: None,
            },
            Fault::None {
                duration_s: Some(1),
            },
        ] {
            let back = serde_json::to_string(&fault).unwrap();
            assert_eq!(
                serde_json::from_str::<Fault>(&back).unwrap(),
                fault,
                "{back}"
            );
        }
    }

    #[test]
    fn validation() {
        assert!(
            Fault::Error {
                status: 504,
                duration_s: Some(1)
            }
            .validate()
            .is_ok()
        );
        assert!(
            Fault::Error {
                status: 429,
                duration_s: None
            }
            .validate()
            .is_err()
        );
        assert!(
            Fault::Slow {
                latency_ms: MAX_LATENCY_MS + 1,
                duration_s: None
            }
            .validate()
            .is_err()
        );
        assert!(
            Fault::None {
                duration_s: Some(0)
            }
            .validate()
            .is_err()
        );
        assert!(Fault::NONE.validate().is_ok());
    }
}
