//! A burst of hires against an agent with few slots, on real libp2p swarms on loopback: every
//! hire is either contracted or declined for capacity with the provider's signed reason, none
//! fails for transport reasons, and a hire that never got a contract leaves no hire record.
//! With `retry_busy`, a client whose hire was declined for capacity tries again until a slot
//! frees.

#[path = "support/mod.rs"]
mod support;

use std::time::Duration;

use serde_json::json;
use souk_node::hire::{HireError, NewHire};
use souk_protocol::hire::HireState;
use souk_protocol::negotiation::DeclineReason;
use support::{
    hire_record, new_hire, publish_and_find, script_agent, start_node, wait_for, wait_for_state,
};

/// Asks a question (so it holds its slot until the client answers), then returns.
const ASKER: &str = r#"
send("question", question={"text": "proceed?"})
msg = inbox.get()
if msg is None or msg.get("type") != "answer":
    send("error", message="no answer")
    sys.exit(0)
send("result", output={"answer": msg["answer"]})
"#;

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"))
}

/// 2 clients × 100 concurrent hires against 3 slots: the libp2p stream limits, the actor's
/// inbox and the offers all see the burst at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_hires_is_contracted_or_declined_never_dropped() {
    const SLOTS: u32 = 3;
    const PER_CLIENT: usize = 100;
    let tmp = tempdir();
    let provider = start_node(
        &tmp.path().join("provider"),
        support::seed(700),
        false,
        vec![],
    )
    .await;
    let mut spec = script_agent(&tmp.path().join("pkg"), "few-slots", ASKER, 1_000_000);
    spec.max_concurrency = SLOTS;
    let mut clients = Vec::new();
    for i in 0..2u16 {
        clients.push(
            start_node(
                &tmp.path().join(format!("client-{i}")),
                support::seed(701 + i),
                true,
                vec![provider.addr.clone()],
            )
            .await,
        );
    }
    let mid = publish_and_find(&provider.handle, &clients[0].handle, spec, "few-slots").await;
    wait_for("the second client to find the agent", || {
        let h = clients[1].handle.clone();
        let mid = mid.clone();
        async move { support::finds(&h, "few-slots", &mid).await }
    })
    .await;

    let mut tasks = tokio::task::JoinSet::new();
    for (c, client) in clients.iter().enumerate() {
        for _ in 0..PER_CLIENT {
            let hires = client.handle.hires.clone();
            let new = new_hire(&mid, json!({}), None, None);
            tasks.spawn(async move { (c, hires.create(new).await) });
        }
    }
    let mut contracted = Vec::new();
    let mut declined = 0usize;
    let mut other = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (c, result) = done.unwrap_or_else(|e| panic!("hire task: {e}"));
        match result {
            Ok(record) => contracted.push((c, record.id())),
            Err(HireError::Declined {
                reason: DeclineReason::Capacity,
                ..
            }) => declined += 1,
            Err(e) => other.push(format!("{e} ({})", e.code())),
        }
    }
    assert!(
        other.is_empty(),
        "{} of {} hires failed other than by a capacity decline: {other:?}",
        other.len(),
        2 * PER_CLIENT
    );
    assert_eq!(
        contracted.len(),
        SLOTS as usize,
        "every slot is contracted once and no more"
    );
    assert_eq!(declined + contracted.len(), 2 * PER_CLIENT);

    // A hire that never got a contract is not a hire: only the contracted ones are listed.
    for (c, client) in clients.iter().enumerate() {
        let listed = client
            .handle
            .hires
            .list()
            .await
            .unwrap_or_else(|e| panic!("list: {e}"));
        let mine: Vec<_> = contracted.iter().filter(|(k, _)| *k == c).collect();
        assert_eq!(listed.len(), mine.len(), "client {c} lists {listed:?}");
        assert!(listed.iter().all(|r| r.state != HireState::Failed));
    }
    // The contracted ones run to completion once answered.
    for (c, id) in &contracted {
        let h = &clients[*c].handle;
        wait_for_state(h, *id, HireState::InputRequired).await;
        h.hires
            .answer(*id, json!("go"))
            .await
            .unwrap_or_else(|e| panic!("answer: {e}"));
    }
    for (c, id) in &contracted {
        wait_for_state(&clients[*c].handle, *id, HireState::Completed).await;
    }
    provider.handle.shutdown().await;
}

/// A client that asks to retry while the provider is busy gets the slot once it frees: the
/// first hire holds the only slot, the second waits (declined for capacity, retried with
/// backoff) and is contracted after the first one's answer ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_retrying_while_busy_gets_the_slot_when_it_frees() {
    let tmp = tempdir();
    let provider = start_node(
        &tmp.path().join("provider"),
        support::seed(710),
        false,
        vec![],
    )
    .await;
    let client = start_node(
        &tmp.path().join("client"),
        support::seed(711),
        true,
        vec![provider.addr.clone()],
    )
    .await;
    let mut spec = script_agent(&tmp.path().join("pkg"), "one-slot", ASKER, 1_000_000);
    spec.max_concurrency = 1;
    let mid = publish_and_find(&provider.handle, &client.handle, spec, "one-slot").await;
    let first = client
        .handle
        .hires
        .create(new_hire(&mid, json!({}), None, None))
        .await
        .unwrap_or_else(|e| panic!("first hire: {e}"));
    wait_for_state(&client.handle, first.id(), HireState::InputRequired).await;

    // Without retrying: declined for capacity at once.
    let busy = client
        .handle
        .hires
        .create(new_hire(&mid, json!({}), None, None))
        .await;
    assert!(
        matches!(
            busy,
            Err(HireError::Declined {
                reason: DeclineReason::Capacity,
                ..
            })
        ),
        "{busy:?}"
    );
    // With retrying: it waits for the slot.
    let hires = client.handle.hires.clone();
    let retry = NewHire {
        retry_busy_ms: Some(Duration::from_secs(120).as_millis() as u64),
        ..new_hire(&mid, json!({}), None, None)
    };
    let second = tokio::spawn(async move { hires.create(retry).await });
    wait_for("the retrying hire to be declined at least once", || {
        let p = provider.handle.clone();
        async move {
            p.info()
                .await
                .is_ok_and(|i| i.metrics.hires_declined_capacity >= 2)
        }
    })
    .await;
    assert!(
        !second.is_finished(),
        "the retrying hire waits for the slot"
    );
    client
        .handle
        .hires
        .answer(first.id(), json!("done"))
        .await
        .unwrap_or_else(|e| panic!("answer: {e}"));
    let second = second
        .await
        .unwrap_or_else(|e| panic!("second hire task: {e}"))
        .unwrap_or_else(|e| panic!("the retrying hire: {e}"));
    let record = hire_record(&client.handle, second.id()).await;
    assert_ne!(record.state, HireState::Failed);
    wait_for_state(&client.handle, second.id(), HireState::InputRequired).await;
    client
        .handle
        .hires
        .answer(second.id(), json!("done"))
        .await
        .unwrap_or_else(|e| panic!("answer: {e}"));
    wait_for_state(&client.handle, second.id(), HireState::Completed).await;
    provider.handle.shutdown().await;
}
