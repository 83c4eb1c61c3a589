//! `tandem drill` against the local stack, once per fault kind: reads always fail over (0 failed
//! GETs), no acknowledged write is lost, and both report files exist and parse. And once as a
//! plain client on a stack whose health watcher switches the active region (contract §6.3), and
//! in the strong mode with a member's disk lost mid-traffic (contract §10.3: RPO 0).

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;
use tandem_cli::drill::Report;
use tandem_shared::Consistency;
use tandem_shared::drill::Rpo;
use tandem_shared::region::WITNESS;
use tandem_testkit::until;

/// The flags of a short drill: 4 s of traffic, 2 s of outage.
const SHORT: &[&str] = &[
    "--duration",
    "4",
    "--outage",
    "2",
    "--rps",
    "40",
    "--write-ratio",
    "0.4",
    "--converge-timeout",
    "30",
];

/// Runs `tandem drill --fault <fault>` with `flags` and checks what every drill must show.
fn drill(stack: &Stack, fault: &str, flags: &[&str], dir: &std::path::Path) -> serde_json::Value {
    let report = dir.join(format!("{}.json", fault.replace(':', "-")));
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args([
            "drill",
            "--endpoint",
            &stack.edge,
            "--token",
            TOKEN,
            "--fault",
            fault,
        ])
        .args(flags)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "drill {fault} failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("lost writes:         0"), "{stdout}");
    let html = std::fs::read_to_string(report.with_extension("html")).unwrap();
    // The doctype is case-insensitive (maud writes `<!DOCTYPE html>`).
    assert!(
        html.get(..15)
            .is_some_and(|d| d.eq_ignore_ascii_case("<!doctype html>"))
            && html.contains("<svg")
            && html.contains("fault window")
    );
    assert!(
        !html.contains("http://") || !html.contains("src=\"http"),
        "the HTML report must be self-contained"
    );
    assert!(
        !html.contains(" src=") && !html.contains("<link"),
        "the HTML report must load nothing"
    );
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    // The outage is reported as `--fault` names it.
    assert_eq!(json["fault"], fault);
    json
}

#[tokio::test]
async fn drills_lose_nothing_and_reads_never_fail() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().unwrap();
    for fault in [
        "error:503",
        "slow:1500",
        "stopped",
        "crashed",
        "blackhole",
        "partition",
    ] {
        let report = drill(&stack, fault, SHORT, dir.path());
        let summary = &report["summary"];
        assert_eq!(
            summary["failures"]["total_reads"], 0,
            "{fault}: failed GETs: {}",
            summary["failures"]
        );
        assert_eq!(
            report["lost_writes"].as_array().unwrap().len(),
            0,
            "{fault}"
        );
        assert!(
            report["acknowledged_writes"].as_u64().unwrap() > 10,
            "{fault}: too few writes to mean anything"
        );
        assert!(
            report["convergence_ms"].is_number(),
            "{fault}: never converged"
        );
        assert_eq!(report["diverging"], serde_json::json!([]), "{fault}");
        let samples = report["samples"].as_array().unwrap();
        assert_eq!(samples.len() as u64, summary["requests"].as_u64().unwrap());
        if fault != "partition" {
            // While the primary was down, someone else answered: the RTO is measured.
            assert!(
                summary["rto_ms"].is_number(),
                "{fault}: no success from {WEST} during the outage"
            );
            assert!(
                samples
                    .iter()
                    .any(|s| s["phase"] == "outage" && s["region"] == WEST),
                "{fault}"
            );
        } else {
            // A partition is invisible to clients: the primary keeps answering everything.
            assert!(samples.iter().all(|s| s["region"] == EAST), "{fault}");
        }
        if fault == "stopped" || fault == "crashed" || fault == "blackhole" {
            // Writes through /api cannot fail over at the edge: the client resent them.
            assert!(summary["client_failovers"].as_u64().unwrap() > 0, "{fault}");
        }
    }
}

#[tokio::test]
async fn a_plain_client_drill_sees_the_watcher_switch_and_loses_nothing() {
    let stack = Stack::start_with(&["--auto-failover", "--probe-interval-ms", "300"]).await;
    let dir = tempfile::tempdir().unwrap();
    let flags = [
        "--client",
        "plain",
        "--switch",
        "auto",
        "--duration",
        "12",
        "--outage",
        "6",
        "--rps",
        "20",
        "--write-ratio",
        "0.5",
        "--converge-timeout",
        "30",
    ];
    let report = drill(&stack, "blackhole", &flags, dir.path());
    assert_eq!(
        (&report["client"], &report["switch"]),
        (&"plain".into(), &"auto".into())
    );
    let switchover = &report["switchover"];
    let after_fault = switchover["switch_after_ms"].as_f64();
    assert!(
        after_fault.is_some_and(|ms| ms > 0.0 && ms < 6000.0),
        "no switch during the outage: {switchover}"
    );
    let switch_ms = report["switch_ms"].as_f64().unwrap();
    // A plain client never resends; after the switch its writes land in the secondary.
    let summary = &report["summary"];
    assert_eq!(summary["client_failovers"], 0);
    let samples = report["samples"].as_array().unwrap();
    assert!(samples.iter().all(|s| s["client_failover"] == false));
    let landed = samples.iter().filter(|s| {
        s["kind"] == "write"
            && s["phase"] == "outage"
            && s["t_ms"].as_f64().unwrap() >= switch_ms
            && s["status"]
                .as_u64()
                .is_some_and(|c| (200..300).contains(&c))
            && s["region"] == WEST
    });
    assert!(
        landed.count() > 0,
        "no plain write landed after the switch: {switchover}"
    );
    let after = &switchover["outage_after_switch"];
    assert!(
        after["writes_by_region"][WEST].as_u64().unwrap() > 0,
        "{after}"
    );
    // Before the switch the plain writes failed, and the reads paid the edge's failover.
    assert!(
        switchover["plain_failed_writes"]["outage"]
            .as_u64()
            .unwrap()
            > 0,
        "{switchover}"
    );
    assert_eq!(
        switchover["total_plain_failed_writes"],
        summary["failures"]["total_writes"]
    );
    // Both sides of the switch were measured (their figures are compared in the bench, not
    // asserted here: no wall-clock limits in tests).
    for side in ["outage_before_switch", "outage_after_switch"] {
        assert!(
            switchover[side]["reads"]["count"].as_u64() > Some(0),
            "{side}: {switchover}"
        );
    }
    assert_eq!(report["lost_writes"], serde_json::json!([]));
    assert!(report["convergence_ms"].is_number(), "never converged");
    // Measured from the heal while the traffic went on, the backlog's recovery does not count
    // the traffic left after the heal, as the check after the traffic does.
    let recovery = report["recovery_ms"].as_f64();
    let convergence = report["convergence_ms"].as_f64().unwrap();
    println!("recovery {recovery:?} ms, convergence {convergence} ms");
    assert!(
        recovery.is_some_and(|r| r < convergence),
        "recovery {recovery:?} ms, convergence {convergence} ms"
    );
    // The drill failed back, so the stack ends as it started, and says so.
    assert!(report["failback_ms"].is_number());
    assert!(
        report["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("failed back")),
        "{}",
        report["notes"]
    );
    let active = stack.control().active_region().await.unwrap();
    assert_eq!(active.region, None);
}

/// Strong mode (contract §10.3): a drill that deletes a member's data directory mid-traffic
/// (`--fault disk-lost`) loses no acknowledged write, and the report says the mode and RPO 0.
/// Once on the primary, once on the witness; each time the directory deleted is the one the
/// member really uses: it comes back under the next generation of its node id, which a member
/// that kept its disk never does.
#[tokio::test]
async fn strong_drills_that_lose_a_disk_lose_no_acknowledged_write() {
    let stack = Stack::start_with(&["--consistency", "strong"]).await;
    let dir = tempfile::tempdir().unwrap();
    let data_dir = stack.data_dir().display().to_string();
    for (generation, member) in [(1, EAST), (1, WITNESS)] {
        let flags = [
            "--region",
            member,
            "--duration",
            "8",
            "--outage",
            "3",
            "--rps",
            "40",
            "--write-ratio",
            "0.4",
            "--converge-timeout",
            "60",
            "--data-dir",
            &data_dir,
        ];
        let report: Report =
            serde_json::from_value(drill(&stack, "disk-lost", &flags, dir.path())).unwrap();
        let rpo = Rpo {
            consistency: Consistency::Strong,
            lost_ids: 0,
        };
        assert_eq!(report.rpo, rpo, "{member}: {:?}", report.lost_writes);
        assert!(report.lost_writes.is_empty(), "{member}");
        assert!(report.diverging.is_empty(), "{member}");
        assert!(report.convergence_ms.is_some(), "{member}: never converged");
        assert!(
            report.acknowledged_writes > 10,
            "{member}: too few writes to mean anything"
        );
        println!(
            "{member}: {} acknowledged, {}",
            report.acknowledged_writes,
            report.rpo.describe()
        );
        let deleted = stack.data_dir().join(member).display().to_string();
        assert!(
            report.notes.iter().any(|n| n.contains(&deleted)),
            "{member}: {:?}",
            report.notes
        );
        let rejoined = until(Duration::from_secs(60), || async {
            let log = stack.control().consensus().await.ok()?;
            let m = log.members.into_iter().find(|m| m.region == member)?;
            (m.generation == generation && m.voter).then_some(m)
        })
        .await;
        assert!(
            rejoined.is_some(),
            "{member} did not rejoin under generation {generation}: {:?}",
            stack.control().consensus().await
        );
    }
}
