//! The routing table shared with the CloudFront Function's test (xtask runs the function in
//! Node.js against the same file): the local edge's rule must give every case's answer.

use serde::Deserialize;
use tandem_shared::routing::api_route;

#[derive(Deserialize)]
struct Case {
    name: String,
    method: String,
    /// The active region's value (`null`: absent).
    active: Option<String>,
    /// Origins in the order they are tried (region names).
    origins: Vec<String>,
}

#[derive(Deserialize)]
struct Table {
    regions: Vec<String>,
    cases: Vec<Case>,
}

#[test]
fn the_local_rule_answers_every_case_of_the_table() {
    let table: Table = serde_json::from_str(include_str!("api_routing.json")).unwrap();
    let regions: Vec<&str> = table.regions.iter().map(String::as_str).collect();
    assert!(table.cases.len() >= 10, "the table lost its cases");
    for case in &table.cases {
        let route = api_route(&case.method, case.active.as_deref(), &regions);
        assert_eq!(route.origins, case.origins, "{}", case.name);
    }
}
