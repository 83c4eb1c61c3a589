//! Outage drills: what one request of a drill recorded, and the figures a drill reports.
//!
//! Shared by `tandem drill` and the console's drill button so that both measure the same
//! things the same way: failed requests by kind and phase, time to the first success from the
//! other region, stale reads, latency percentiles per phase and per region, lost writes.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The phase of a drill a request started in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Before,
    Outage,
    After,
}

/// Read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Read,
    Write,
}

/// One request of a drill, as the client lived it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Milliseconds from the start of the drill to the start of the request.
    pub t_ms: f64,
    pub kind: Kind,
    pub phase: Phase,
    /// Final HTTP status; 0 when no response came at all.
    pub status: u16,
    /// Milliseconds until the final answer (client failover included).
    pub latency_ms: f64,
    /// `x-served-region` of the final answer.
    pub region: Option<String>,
    /// `x-edge-failover`, when the local edge reports one.
    pub edge_failover: Option<String>,
    /// The write was resent to the other region after a 5xx or a network error.
    pub client_failover: bool,
    /// A read of an acknowledged write that found it missing: not yet replicated.
    pub stale: bool,
}

impl Sample {
    /// Whether the client got what it asked for (a stale read still counts as answered).
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status) || self.stale
    }
}

/// Latency percentiles of a set of requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: usize,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl Latency {
    pub fn of(mut values: Vec<f64>) -> Latency {
        values.sort_by(f64::total_cmp);
        let pick = |p: f64| -> Option<f64> {
            if values.is_empty() {
                return None;
            }
            let rank = ((values.len() as f64 * p).ceil() as usize).clamp(1, values.len());
            Some(values[rank - 1])
        };
        Latency {
            count: values.len(),
            p50_ms: pick(0.50),
            p99_ms: pick(0.99),
        }
    }
}

/// Requests that failed, by kind and phase.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Failures {
    pub reads: BTreeMap<String, usize>,
    pub writes: BTreeMap<String, usize>,
    pub total_reads: usize,
    pub total_writes: usize,
}

/// The figures of a drill.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub requests: usize,
    pub failures: Failures,
    /// Milliseconds from the fault to the first success answered by another region: the
    /// recovery time a client saw. `None` when no request was answered elsewhere.
    pub rto_ms: Option<f64>,
    pub stale_reads: usize,
    pub client_failovers: usize,
    /// Latency per phase, and per answering region.
    pub latency_by_phase: BTreeMap<String, Latency>,
    pub latency_by_region: BTreeMap<String, Latency>,
}

fn phase_name(p: Phase) -> String {
    serde_json::to_value(p)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl Summary {
    /// Figures of `samples` for a drill that faulted `region` at `fault_ms`.
    pub fn of(samples: &[Sample], region: &str, fault_ms: f64) -> Summary {
        let mut s = Summary {
            requests: samples.len(),
            ..Default::default()
        };
        let mut by_phase: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut by_region: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for x in samples {
            let phase = phase_name(x.phase);
            if !x.ok() {
                let (map, total) = match x.kind {
                    Kind::Read => (&mut s.failures.reads, &mut s.failures.total_reads),
                    Kind::Write => (&mut s.failures.writes, &mut s.failures.total_writes),
                };
                *map.entry(phase.clone()).or_default() += 1;
                *total += 1;
            }
            s.stale_reads += usize::from(x.stale);
            s.client_failovers += usize::from(x.client_failover);
            if x.ok() {
                by_phase.entry(phase).or_default().push(x.latency_ms);
                if let Some(r) = &x.region {
                    by_region.entry(r.clone()).or_default().push(x.latency_ms);
                }
            }
        }
        s.rto_ms = samples
            .iter()
            .filter(|x| {
                x.t_ms >= fault_ms && x.ok() && x.region.as_deref().is_some_and(|r| r != region)
            })
            .map(|x| x.t_ms + x.latency_ms - fault_ms)
            .min_by(f64::total_cmp);
        s.latency_by_phase = by_phase
            .into_iter()
            .map(|(k, v)| (k, Latency::of(v)))
            .collect();
        s.latency_by_region = by_region
            .into_iter()
            .map(|(k, v)| (k, Latency::of(v)))
            .collect();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: f64, kind: Kind, phase: Phase, status: u16, region: &str) -> Sample {
        Sample {
            t_ms: t,
            kind,
            phase,
            status,
            latency_ms: 10.0,
            region: (!region.is_empty()).then(|| region.to_owned()),
            edge_failover: None,
            client_failover: false,
            stale: false,
        }
    }

    #[test]
    fn summary_counts_failures_rto_and_latency() {
        let samples = vec![
            sample(0.0, Kind::Read, Phase::Before, 200, "us-east-1"),
            sample(1000.0, Kind::Write, Phase::Outage, 502, ""),
            sample(1100.0, Kind::Read, Phase::Outage, 200, "us-west-2"),
            sample(1200.0, Kind::Read, Phase::Outage, 0, ""),
            sample(2000.0, Kind::Read, Phase::After, 200, "us-east-1"),
        ];
        let s = Summary::of(&samples, "us-east-1", 1000.0);
        assert_eq!(s.requests, 5);
        assert_eq!(s.failures.total_writes, 1);
        assert_eq!(s.failures.total_reads, 1);
        assert_eq!(s.failures.reads.get("outage"), Some(&1));
        assert_eq!(s.rto_ms, Some(110.0));
        assert_eq!(s.latency_by_region["us-east-1"].count, 2);
        assert_eq!(s.latency_by_phase["before"].p50_ms, Some(10.0));
    }

    #[test]
    fn stale_reads_are_answered_not_failed() {
        let mut x = sample(0.0, Kind::Read, Phase::Outage, 404, "us-west-2");
        x.stale = true;
        let s = Summary::of(&[x], "us-east-1", 0.0);
        assert_eq!((s.stale_reads, s.failures.total_reads), (1, 0));
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let l = Latency::of((1..=100).map(f64::from).collect());
        assert_eq!((l.p50_ms, l.p99_ms), (Some(50.0), Some(99.0)));
        assert_eq!(Latency::of(vec![]).p50_ms, None);
    }
}
