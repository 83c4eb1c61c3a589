//! `tandem drill` against the local stack, once per fault kind: reads always fail over (0 failed
//! GETs), no acknowledged write is lost, and both report files exist and parse.

mod common;

use common::*;
use std::process::Command;

fn drill(stack: &Stack, fault: &str, dir: &std::path::Path) -> serde_json::Value {
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
        .args([
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
        ])
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
        let report = drill(&stack, fault, dir.path());
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
