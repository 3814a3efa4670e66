//! A full-node client holding a saved manifest id of an agent its provider has changed since:
//! the hire is declined `superseded` with the current id (the client's catalog already holds
//! the new version), and a retired agent's id is no longer offered by the provider.
//! On real libp2p swarms on loopback; waits are on conditions, never fixed sleeps.

#[path = "support/mod.rs"]
mod support;

use serde_json::json;
use souk_node::hire::HireError;
use souk_protocol::negotiation::DeclineReason;
use support::{finds, new_hire, provider_and_client, publish_and_find, script_agent, wait_for};

const QUICK: &str = r#"
send("decision", text="nothing to do")
send("result", output={"ok": True})
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_agents_old_id_is_superseded_and_a_retired_one_is_not_offered() {
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let (provider, client) = provider_and_client(tmp.path(), 40, false).await;
    let pkg = tmp.path().join("pkg");
    let mut spec = script_agent(&pkg, "quick", QUICK, 1_000_000);
    let old = publish_and_find(&provider.handle, &client.handle, spec.clone(), "quick").await;
    // Re-publishing the unchanged agent keeps the id.
    let again = provider
        .handle
        .publish(spec.clone())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .manifest_id;
    assert_eq!(again, old);

    spec.description = "Finishes at once, now with a new description".into();
    let current = publish_and_find(&provider.handle, &client.handle, spec, "new").await;
    assert_ne!(current, old);
    wait_for("the client to drop the old version", || async {
        !finds(&client.handle, "quick", &old).await
    })
    .await;
    match client
        .handle
        .hires
        .create(new_hire(&old, json!({}), None, None))
        .await
    {
        Err(HireError::Declined {
            reason: DeclineReason::Superseded,
            current: Some(c),
            ..
        }) => assert_eq!(c.to_hex(), current),
        other => panic!("a hire of a changed agent's old id: {other:?}"),
    }

    // Retired: the provider no longer offers it, under any id.
    provider
        .handle
        .retire("quick")
        .await
        .unwrap_or_else(|e| panic!("retire: {e}"));
    match client
        .handle
        .hires
        .create(new_hire(&current, json!({}), None, None))
        .await
    {
        Err(HireError::Declined {
            reason: DeclineReason::UnknownManifest,
            ..
        }) => {}
        other => panic!("a hire of a retired agent: {other:?}"),
    }
}
