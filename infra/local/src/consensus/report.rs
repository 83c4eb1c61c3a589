//! `tandem consensus`: the strong mode's log as the control API reports it, one line per member.

use std::time::Duration;
use tandem_shared::Consistency;
use tandem_shared::control::{ConsensusStatus, MemberStatus};

/// Prints the consensus status of the stack at `target`.
pub async fn run(target: tandem_ops::client::Target) -> anyhow::Result<()> {
    let status = target.client(Duration::from_secs(10))?.consensus().await?;
    print!("{}", render(&status));
    Ok(())
}

fn position(n: Option<u64>) -> String {
    n.map_or("-".to_owned(), |n| n.to_string())
}

fn line(m: &MemberStatus) -> String {
    let name = match m.witness {
        true => format!("{} (witness)", m.region),
        false => m.region.clone(),
    };
    let mut line = format!(
        "  {name:<22} {:<9} id {:<5} gen {:<3} term {:<4} log {:<6} committed {:<6} applied {:<6}",
        m.role.as_str(),
        m.node_id,
        m.generation,
        m.term,
        position(m.last_log_index),
        position(m.committed),
        position(m.applied),
    );
    if let Some(e) = &m.error {
        line.push_str(&format!("  ({e})"));
    }
    line
}

/// The status as text.
pub fn render(s: &ConsensusStatus) -> String {
    if s.mode == Consistency::Eventual {
        return "consistency: eventual (no consensus log; see tandem up --consistency strong)\n"
            .into();
    }
    let mut out = format!(
        "consistency: strong, leader {}, term {}\n",
        s.leader.as_deref().unwrap_or("none"),
        s.term
    );
    for m in &s.members {
        out.push_str(&line(m));
        out.push('\n');
    }
    if let Some(voters) = s
        .members
        .iter()
        .find(|m| m.leader.is_some())
        .map(|m| &m.voters)
    {
        out.push_str(&format!("  voters: {}\n", voters.join(", ")));
    }
    for r in &s.unavailable {
        out.push_str(&format!(
            "  {r:<22} unavailable (stopped, crashed or blackholed)\n"
        ));
    }
    out
}
