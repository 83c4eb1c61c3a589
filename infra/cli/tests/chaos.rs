//! A short randomized fault run (`tandem chaos --seconds 20`): crashes, blackholes, pauses, lag
//! and one lost disk while writers write; every acknowledged write must survive (or be
//! superseded under last-writer-wins) and every region must end identical. The long run is
//! `tandem chaos --minutes 5`.

use std::process::Command;

#[test]
fn a_short_chaos_run_loses_nothing_and_converges() {
    let history = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args([
            "chaos",
            "--seconds",
            "20",
            "--seed",
            "20261127",
            "--writers",
            "3",
        ])
        .arg("--history")
        .arg(history.path())
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("verdict: ok"), "{stdout}");
    assert!(
        stdout.contains("disk lost"),
        "the run includes a lost disk: {stdout}"
    );
    let h: serde_json::Value =
        serde_json::from_slice(&std::fs::read(history.path()).unwrap()).unwrap();
    let acked = h["verdict"]["acknowledged_puts"].as_u64().unwrap();
    assert!(acked >= 50, "too few writes to mean anything: {acked}");
    assert_eq!(h["verdict"]["regions_identical"], true);
}
