//! Reports for the report's tests: a drill with a crash of us-east-1 that reads failed over,
//! and the same drill as a plain client switched by the health watcher.

use super::report::Report;
use tandem_shared::drill::{
    ClientMode, Kind, Phase, Rpo, Sample, Summary, SwitchFigures, SwitchMode,
};

fn sample(t_ms: f64, kind: Kind, status: u16, region: Option<&str>) -> Sample {
    Sample {
        t_ms,
        kind,
        phase: Phase::Before,
        status,
        latency_ms: 12.0,
        region: region.map(str::to_owned),
        edge_failover: None,
        client_failover: false,
        stale: false,
    }
}

/// us-east-1 crashed from 1 s to 3 s: a write it took, a read that failed, one failed over.
pub(super) fn report() -> Report {
    let samples = vec![
        sample(100.0, Kind::Write, 200, Some("us-east-1")),
        sample(1500.0, Kind::Read, 502, None),
        sample(1600.0, Kind::Read, 200, Some("us-west-2")),
    ];
    Report {
        endpoint: "http://127.0.0.1:8080/?a=<b>&c".into(),
        fault: "crashed".parse().unwrap(),
        region: "us-east-1".into(),
        other_region: "us-west-2".into(),
        regions: vec!["us-east-1".into(), "us-west-2".into()],
        duration_s: 4,
        outage_s: 2,
        rps: 40,
        write_ratio: 0.4,
        client: ClientMode::Failover,
        switch: SwitchMode::None,
        fault_ms: 1000.0,
        heal_ms: 3000.0,
        traffic_end_ms: 4000.0,
        switch_ms: None,
        failback_ms: None,
        recovery_ms: Some(120.0),
        convergence_ms: Some(250.0),
        acknowledged_writes: 1,
        lost_writes: vec![],
        diverging: vec![],
        rpo: Rpo::default(),
        summary: Summary::of(&samples, "us-east-1", 1000.0),
        switchover: SwitchFigures::of(&samples, 1000.0, None),
        notes: vec![],
        samples,
    }
}

/// [`report`] as a plain client with the health watcher switching at 1.5 s.
pub(super) fn switched_report() -> Report {
    let mut r = report();
    r.samples.push(sample(1200.0, Kind::Write, 504, None));
    r.samples
        .push(sample(1700.0, Kind::Write, 201, Some("us-west-2")));
    for s in &mut r.samples {
        s.phase = if s.t_ms < 1000.0 {
            Phase::Before
        } else {
            Phase::Outage
        };
    }
    r.samples.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
    r.client = ClientMode::Plain;
    r.switch = SwitchMode::Auto;
    r.switch_ms = Some(1500.0);
    r.failback_ms = Some(3400.0);
    r.summary = Summary::of(&r.samples, "us-east-1", 1000.0);
    r.switchover = SwitchFigures::of(&r.samples, 1000.0, r.switch_ms);
    r.notes = vec!["failed back after the heal".into()];
    r
}
