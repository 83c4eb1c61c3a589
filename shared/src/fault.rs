//! Admin faults: what a region can be told to do to its data routes.

use serde::{Deserialize, Serialize};

/// The body of `PUT /api/admin/fault`: `{"mode": "error", "status": 503}`,
/// `{"mode": "slow", "latency_ms": 3000}` or `{"mode": "none"}`, each with an optional
/// `duration_s` after which the fault clears itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
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
