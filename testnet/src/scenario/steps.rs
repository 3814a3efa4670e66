//! A hire's steps against the uninterrupted reference hire, with the allowances the spec
//! makes for crashes (spec/agent-protocol.md, "Resuming from a checkpoint").

/// An agent's work with the replays the spec allows collapsed (spec/agent-protocol.md,
/// "Resuming from a checkpoint"): after a restart the agent redoes, and the chain records
/// again, the steps since its last checkpoint; and a checkpoint whose state was stored but
/// whose entry a crash lost is missing from the chain while the agent resumes after it.
/// So `checkpoint` entries only bound stretches (they are not compared), and within a
/// stretch an entry equal to an earlier one is a replay. `started` and the terminal entry
/// (whose summaries carry times) are left out. Returns the steps and the replays dropped.
pub(crate) fn logical_steps(steps: &[(String, String)]) -> (Vec<(String, String)>, usize) {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut stretch_start = 0;
    let mut replays = 0;
    for (kind, summary) in steps {
        match kind.as_str() {
            "started" | "completed" | "failed" | "canceled" | "expired" => continue,
            "checkpoint" => {
                stretch_start = out.len();
                continue;
            }
            _ => {}
        }
        let step = (kind.clone(), summary.clone());
        if out[stretch_start..].contains(&step) {
            replays += 1;
            continue;
        }
        out.push(step);
    }
    (out, replays)
}

/// The comparison of one hire's steps with the reference: `None` if equal.
pub(crate) fn differs(reference: &[(String, String)], got: &[(String, String)]) -> Option<String> {
    if reference == got {
        return None;
    }
    let i = reference
        .iter()
        .zip(got)
        .position(|(a, b)| a != b)
        .unwrap_or(reference.len().min(got.len()));
    Some(format!(
        "{} steps against {} in the reference; first difference at step {i}: {:?} vs {:?}",
        got.len(),
        reference.len(),
        got.get(i).map(|s| &s.1),
        reference.get(i).map(|s| &s.1)
    ))
}

/// The uninterrupted reference hire: its steps (replays collapsed) and its output.
pub(crate) type Reference = (Vec<(String, String)>, Option<serde_json::Value>);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn s(kind: &str, summary: &str) -> (String, String) {
        (kind.to_owned(), summary.to_owned())
    }

    #[test]
    fn replays_and_lost_checkpoint_entries_are_allowed_and_real_differences_show() {
        let clean = vec![
            s("started", "t=1"),
            s("decision", "count 0"),
            s("checkpoint", "c1"),
            s("decision", "count 1"),
            s("checkpoint", "c2"),
            s("decision", "count 2"),
            s("checkpoint", "c3"),
            s("result", "r"),
            s("completed", "wall 3"),
        ];
        // Killed after "count 1" was recorded, before its checkpoint: redone once.
        let replayed = vec![
            s("started", "t=9"),
            s("decision", "count 0"),
            s("checkpoint", "c1"),
            s("decision", "count 1"),
            s("decision", "count 1"),
            s("checkpoint", "c2"),
            s("decision", "count 2"),
            s("checkpoint", "c3"),
            s("result", "r"),
            s("completed", "wall 7"),
        ];
        // Killed after c2's state was stored, before its entry: resumed after it.
        let lost_entry = vec![
            s("decision", "count 0"),
            s("checkpoint", "c1"),
            s("decision", "count 1"),
            s("decision", "count 2"),
            s("checkpoint", "c3"),
            s("result", "r"),
        ];
        let (a, ra) = logical_steps(&clean);
        let (b, rb) = logical_steps(&replayed);
        let (c, rc) = logical_steps(&lost_entry);
        assert_eq!((ra, rb, rc), (0, 1, 0));
        assert_eq!(differs(&a, &b), None);
        assert_eq!(differs(&a, &c), None);
        // A lost step is a difference.
        let lost = vec![
            s("decision", "count 0"),
            s("checkpoint", "c1"),
            s("checkpoint", "c2"),
            s("decision", "count 2"),
            s("result", "r"),
        ];
        let (d, _) = logical_steps(&lost);
        assert!(
            differs(&a, &d)
                .unwrap()
                .contains("first difference at step 1")
        );
        // A step repeated across a checkpoint is a duplicate, not a replay.
        let dup = vec![
            s("decision", "count 0"),
            s("checkpoint", "c1"),
            s("decision", "count 0"),
            s("decision", "count 1"),
            s("checkpoint", "c2"),
            s("decision", "count 2"),
            s("result", "r"),
        ];
        let (e, re) = logical_steps(&dup);
        assert_eq!(re, 0);
        assert!(differs(&a, &e).is_some());
    }
}
