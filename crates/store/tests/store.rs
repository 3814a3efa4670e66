//! Behaviour of `souk_store::Store`: manifests (insert, duplicate, stale, replace, removal,
//! expiry, pagination), agents and node state, persistence, schema versions and bad files.
//! Hires, receipts and blobs are in `hires.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use souk_protocol::manifest::Manifest;
use souk_protocol::vectors::{T0, manifest_body, provider_key};
use souk_protocol::{Hash, Keypair, Signed};
use souk_store::{PutOutcome, SCHEMA_VERSION, Store, StoreConfig, StoreError};

/// The tables as `spec/store.md` documents them, for checks that bypass the store.
const RAW_META: TableDefinition<'static, &[u8], &[u8]> = TableDefinition::new("meta");
const RAW_LATEST: &str = "manifest_latest";
const RAW_EXPIRY: &str = "manifest_expiry";
const RAW_MANIFESTS: &str = "manifests";

const DAY: u64 = 24 * 3600 * 1000;

fn small() -> StoreConfig {
    StoreConfig {
        cache_size: 4 * 1024 * 1024,
    }
}

fn temp_store() -> (tempfile::TempDir, PathBuf, Store) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    let store = Store::open(&path, &small()).unwrap();
    (dir, path, store)
}

/// A manifest whose content changes with `seq` (so every seq is another agent version with
/// its own manifest id).
fn manifest(key: &Keypair, name: &str, seq: u64, expires_at: u64) -> Signed<Manifest> {
    let mut body = manifest_body(key);
    body.name = name.into();
    body.description = format!("version {seq}");
    body.seq = seq;
    body.expires_at = expires_at;
    Signed::sign(body, key)
}

/// A re-announcement of `m`: same content (same manifest id), another seq and expiry.
fn reannounced(key: &Keypair, m: &Signed<Manifest>, seq: u64, expires_at: u64) -> Signed<Manifest> {
    let mut body = m.body().clone();
    body.seq = seq;
    body.expires_at = expires_at;
    Signed::sign(body, key)
}

fn other_key(n: u8) -> Keypair {
    Keypair::from_seed(&[n; 32])
}

/// Every row of a bytes-to-bytes table, read with redb directly (the store must be closed).
fn raw_rows(path: &Path, table: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_read().unwrap();
    let def: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new(table);
    let t = txn.open_table(def).unwrap();
    t.iter()
        .unwrap()
        .map(|row| {
            let (k, v) = row.unwrap();
            (k.value().to_vec(), v.value().to_vec())
        })
        .collect()
}

fn set_raw_version(path: &Path, version: Option<&[u8]>) {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        let mut meta = txn.open_table(RAW_META).unwrap();
        match version {
            Some(v) => {
                meta.insert(b"schema_version".as_slice(), v).unwrap();
            }
            None => {
                meta.remove(b"schema_version".as_slice()).unwrap();
            }
        }
    }
    txn.commit().unwrap();
}

#[test]
fn insert_duplicate_stale_and_replace() {
    let (_dir, _path, store) = temp_store();
    let key = provider_key();
    let provider = *key.id().as_bytes();
    let v3 = manifest(&key, "csv-analyst", 3, T0 + DAY);

    assert_eq!(
        store.put_manifest(&v3).unwrap(),
        PutOutcome::Inserted { replaced: None }
    );
    assert_eq!(store.put_manifest(&v3).unwrap(), PutOutcome::Duplicate);
    assert_eq!(
        store.latest_seq(&provider, "csv-analyst").unwrap(),
        Some((3, v3.id()))
    );
    assert_eq!(store.get_manifest(&v3.id()).unwrap(), Some(v3.to_bytes()));

    // Lower and equal seq (a different manifest at the same seq) are stale.
    let v2 = manifest(&key, "csv-analyst", 2, T0 + DAY);
    assert_eq!(
        store.put_manifest(&v2).unwrap(),
        PutOutcome::Stale { current_seq: 3 }
    );
    let mut body = v3.body().clone();
    body.description = "another version 3".into();
    let v3b = Signed::sign(body, &key);
    assert_ne!(v3b.id(), v3.id());
    assert_eq!(
        store.put_manifest(&v3b).unwrap(),
        PutOutcome::Stale { current_seq: 3 }
    );
    // The same version announced again at the same seq changes nothing.
    let v3c = reannounced(&key, &v3, 3, T0 + 2 * DAY);
    assert_eq!(v3c.id(), v3.id());
    assert_eq!(store.put_manifest(&v3c).unwrap(), PutOutcome::Duplicate);
    assert_eq!(store.get_manifest(&v3.id()).unwrap(), Some(v3.to_bytes()));
    assert_eq!(store.get_manifest(&v2.id()).unwrap(), None);
    assert_eq!(store.manifest_count().unwrap(), 1);

    // A higher seq replaces.
    let v7 = manifest(&key, "csv-analyst", 7, T0 + 2 * DAY);
    assert_eq!(
        store.put_manifest(&v7).unwrap(),
        PutOutcome::Inserted {
            replaced: Some(v3.id())
        }
    );
    assert_eq!(store.get_manifest(&v3.id()).unwrap(), None);
    assert_eq!(store.get_manifest(&v7.id()).unwrap(), Some(v7.to_bytes()));
    assert_eq!(
        store.latest_seq(&provider, "csv-analyst").unwrap(),
        Some((7, v7.id()))
    );
    assert_eq!(store.manifest_count().unwrap(), 1);
    // The replaced one is now stale, not a duplicate.
    assert_eq!(
        store.put_manifest(&v3).unwrap(),
        PutOutcome::Stale { current_seq: 7 }
    );

    // Other names and other providers are independent.
    let other_name = manifest(&key, "pdf-reader", 1, T0 + DAY);
    let other_provider = manifest(&other_key(0x44), "csv-analyst", 1, T0 + DAY);
    for m in [&other_name, &other_provider] {
        assert_eq!(
            store.put_manifest(m).unwrap(),
            PutOutcome::Inserted { replaced: None }
        );
    }
    assert_eq!(store.manifest_count().unwrap(), 3);
    assert_eq!(store.latest_seq(&provider, "nothing").unwrap(), None);
}

#[test]
fn replaced_manifest_rows_are_gone() {
    let (_dir, path, store) = temp_store();
    let key = provider_key();
    let old = manifest(&key, "csv-analyst", 1, T0 + DAY);
    let new = manifest(&key, "csv-analyst", 2, T0 + 3 * DAY);
    store.put_manifest(&old).unwrap();
    store.put_manifest(&new).unwrap();
    // The old expiry row is gone: sweeping at the old expiry removes nothing.
    assert_eq!(store.remove_expired(T0 + DAY).unwrap(), Vec::<Hash>::new());
    assert_eq!(store.manifest_count().unwrap(), 1);
    drop(store);

    // Byte-level check of every table against spec/store.md.
    let manifests = raw_rows(&path, RAW_MANIFESTS);
    assert_eq!(manifests, vec![(new.id().0.to_vec(), new.to_bytes())]);
    let mut latest_key = key.id().as_bytes().to_vec();
    latest_key.extend_from_slice(b"csv-analyst");
    let mut latest_value = 2u64.to_be_bytes().to_vec();
    latest_value.extend_from_slice(&new.id().0);
    assert_eq!(
        raw_rows(&path, RAW_LATEST),
        vec![(latest_key, latest_value)]
    );
    let mut expiry_key = (T0 + 3 * DAY).to_be_bytes().to_vec();
    expiry_key.extend_from_slice(&new.id().0);
    assert_eq!(raw_rows(&path, RAW_EXPIRY), vec![(expiry_key, Vec::new())]);
}

#[test]
fn remove_manifest_cleans_every_table() {
    let (_dir, path, store) = temp_store();
    let key = provider_key();
    let a = manifest(&key, "a", 1, T0 + DAY);
    let b = manifest(&key, "b", 1, T0 + DAY);
    store.put_manifest(&a).unwrap();
    store.put_manifest(&b).unwrap();
    assert!(store.remove_manifest(&a.id()).unwrap());
    assert!(!store.remove_manifest(&a.id()).unwrap());
    assert_eq!(store.get_manifest(&a.id()).unwrap(), None);
    assert_eq!(store.latest_seq(key.id().as_bytes(), "a").unwrap(), None);
    assert_eq!(store.manifest_count().unwrap(), 1);
    // Once removed, the (provider, name) accepts any seq again.
    assert_eq!(
        store.put_manifest(&a).unwrap(),
        PutOutcome::Inserted { replaced: None }
    );
    assert!(store.remove_manifest(&a.id()).unwrap());
    drop(store);
    assert_eq!(raw_rows(&path, RAW_MANIFESTS).len(), 1);
    assert_eq!(raw_rows(&path, RAW_LATEST).len(), 1);
    assert_eq!(raw_rows(&path, RAW_EXPIRY).len(), 1);
}

/// Writes rows into bytes-to-bytes tables with redb directly (the store must be closed).
fn raw_insert(path: &Path, rows: &[(&str, Vec<u8>, Vec<u8>)]) {
    let db = redb::Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    for (table, key, value) in rows {
        let def: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new(table);
        let mut t = txn.open_table(def).unwrap();
        t.insert(key.as_slice(), value.as_slice()).unwrap();
    }
    txn.commit().unwrap();
}

#[test]
fn inconsistent_rows_are_repaired_not_fatal() {
    let (_dir, path, store) = temp_store();
    drop(store);
    let key = provider_key();
    // A stored manifest whose bytes no longer decode, with its index rows.
    let broken = Hash([0xb0; 32]);
    let mut broken_latest = key.id().as_bytes().to_vec();
    broken_latest.extend_from_slice(b"broken");
    let mut broken_latest_value = 1u64.to_be_bytes().to_vec();
    broken_latest_value.extend_from_slice(&broken.0);
    let mut broken_expiry = T0.to_be_bytes().to_vec();
    broken_expiry.extend_from_slice(&broken.0);
    // A manifest_latest row (and expiry row) naming a manifest that is not stored.
    let ghost = Hash([0x60; 32]);
    let mut ghost_latest = key.id().as_bytes().to_vec();
    ghost_latest.extend_from_slice(b"ghost");
    let mut ghost_latest_value = 1u64.to_be_bytes().to_vec();
    ghost_latest_value.extend_from_slice(&ghost.0);
    let mut ghost_expiry = (T0 + 5).to_be_bytes().to_vec();
    ghost_expiry.extend_from_slice(&ghost.0);
    raw_insert(
        &path,
        &[
            (RAW_MANIFESTS, broken.0.to_vec(), b"not cbor".to_vec()),
            (RAW_LATEST, broken_latest, broken_latest_value),
            (RAW_EXPIRY, broken_expiry, Vec::new()),
            (RAW_LATEST, ghost_latest, ghost_latest_value),
            (RAW_EXPIRY, ghost_expiry, Vec::new()),
        ],
    );

    let store = Store::open(&path, &small()).unwrap();
    assert!(store.remove_manifest(&broken).unwrap());
    assert_eq!(
        store.latest_seq(key.id().as_bytes(), "broken").unwrap(),
        None
    );
    // The ghost is replaced by a higher seq; nothing real was replaced.
    let real = manifest(&key, "ghost", 2, T0 + DAY);
    assert_eq!(
        store.put_manifest(&real).unwrap(),
        PutOutcome::Inserted { replaced: None }
    );
    assert_eq!(store.remove_expired(T0 + DAY).unwrap(), vec![real.id()]);
    drop(store);
    for table in [RAW_MANIFESTS, RAW_LATEST, RAW_EXPIRY] {
        assert!(raw_rows(&path, table).is_empty(), "{table}");
    }
}

#[test]
fn remove_expired_removes_only_expired_manifests_and_their_rows() {
    let (_dir, path, store) = temp_store();
    let key = provider_key();
    let early = manifest(&key, "early", 1, T0);
    let at_now = manifest(&key, "at-now", 1, T0 + DAY);
    let later = manifest(&key, "later", 1, T0 + DAY + 1);
    let other = manifest(&other_key(0x55), "early", 1, T0 + 10);
    for m in [&later, &at_now, &other, &early] {
        store.put_manifest(m).unwrap();
    }
    assert_eq!(store.remove_expired(T0 - 1).unwrap(), Vec::<Hash>::new());

    let removed = store.remove_expired(T0 + DAY).unwrap();
    // In expiry order; `expires_at == now` counts as expired.
    assert_eq!(removed, vec![early.id(), other.id(), at_now.id()]);
    assert_eq!(store.manifest_count().unwrap(), 1);
    assert_eq!(
        store.get_manifest(&later.id()).unwrap(),
        Some(later.to_bytes())
    );
    for m in [&early, &at_now, &other] {
        assert_eq!(store.get_manifest(&m.id()).unwrap(), None);
        let provider = m.body().provider.as_bytes();
        assert_eq!(store.latest_seq(provider, &m.body().name).unwrap(), None);
    }
    assert_eq!(
        store.latest_seq(key.id().as_bytes(), "later").unwrap(),
        Some((1, later.id()))
    );
    assert_eq!(store.remove_expired(T0 + DAY).unwrap(), Vec::<Hash>::new());
    drop(store);
    assert_eq!(raw_rows(&path, RAW_LATEST).len(), 1);
    let expiry = raw_rows(&path, RAW_EXPIRY);
    assert_eq!(expiry.len(), 1);
    assert_eq!(&expiry[0].0[8..], &later.id().0);
}

#[test]
fn all_manifests_and_pages() {
    let (_dir, _path, store) = temp_store();
    assert!(store.all_manifests().unwrap().is_empty());
    assert!(store.manifests_page(None, 10).unwrap().is_empty());
    let key = provider_key();
    let ms: Vec<_> = (0..5)
        .map(|i| manifest(&key, &format!("agent-{i}"), 1, T0 + DAY))
        .collect();
    for m in &ms {
        store.put_manifest(m).unwrap();
    }
    let mut expected: Vec<_> = ms.iter().map(|m| (m.id(), m.to_bytes())).collect();
    expected.sort();
    assert_eq!(
        store.all_manifests().unwrap(),
        expected.iter().map(|(_, b)| b.clone()).collect::<Vec<_>>()
    );
    assert_eq!(store.manifests_page(None, 0).unwrap(), Vec::new());
    assert_eq!(store.manifests_page(None, 100).unwrap(), expected);
    // `after` need not be a stored id.
    let after = Hash([0; 32]);
    assert_eq!(
        store.manifests_page(Some(&after), 2).unwrap(),
        expected[..2]
    );
    let last = expected[4].0;
    assert!(store.manifests_page(Some(&last), 2).unwrap().is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn pages_cover_every_id_once_in_order(
        specs in prop::collection::vec((0u8..4, 0u8..6, 1u64..5), 0..24),
        limit in 1usize..7,
    ) {
        let (_dir, _path, store) = temp_store();
        let keys: Vec<Keypair> = (0..4).map(|n| other_key(0x60 + n)).collect();
        let mut kept = std::collections::BTreeMap::new();
        for (provider, name, seq) in specs {
            let m = manifest(&keys[provider as usize], &format!("n{name}"), seq, T0 + DAY);
            if let PutOutcome::Inserted { .. } = store.put_manifest(&m).unwrap() {
                kept.insert((provider, name), m.id());
            }
        }
        let expected: BTreeSet<Hash> = kept.values().copied().collect();
        prop_assert_eq!(store.manifest_count().unwrap(), expected.len() as u64);

        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store.manifests_page(after.as_ref(), limit).unwrap();
            prop_assert!(page.len() <= limit);
            for (id, bytes) in &page {
                let decoded = Signed::<Manifest>::decode_bytes(bytes).unwrap();
                prop_assert_eq!(decoded.id(), *id);
            }
            let Some((last, _)) = page.last() else { break };
            after = Some(*last);
            seen.extend(page.iter().map(|(id, _)| *id));
        }
        prop_assert!(seen.windows(2).all(|w| w[0] < w[1]), "not strictly increasing");
        prop_assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), expected);
    }
}

#[test]
fn data_survives_close_and_reopen() {
    let (dir, path, store) = temp_store();
    let key = provider_key();
    let m = manifest(&key, "csv-analyst", 3, T0 + DAY);
    store.put_manifest(&m).unwrap();
    store
        .put_agent("csv-analyst", br#"{"enabled":true}"#)
        .unwrap();
    store.put_state("last_publish", b"123").unwrap();
    store.flush().unwrap();
    drop(store);

    let store = Store::open(&path, &StoreConfig::default()).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(store.get_manifest(&m.id()).unwrap(), Some(m.to_bytes()));
    assert_eq!(
        store
            .latest_seq(key.id().as_bytes(), "csv-analyst")
            .unwrap(),
        Some((3, m.id()))
    );
    assert_eq!(
        store.get_agent("csv-analyst").unwrap().as_deref(),
        Some(br#"{"enabled":true}"#.as_slice())
    );
    assert_eq!(
        store.get_state("last_publish").unwrap().as_deref(),
        Some(b"123".as_slice())
    );
    assert_eq!(store.path(), path);
    drop(dir);
}

#[test]
fn agents_crud() {
    let (_dir, _path, store) = temp_store();
    assert_eq!(store.get_agent("x").unwrap(), None);
    assert!(store.list_agents().unwrap().is_empty());
    store.put_agent("zeta", b"{\"z\":1}").unwrap();
    store.put_agent("alpha", b"{}").unwrap();
    store.put_agent("mid", b"").unwrap();
    store.put_agent("alpha", b"{\"v\":2}").unwrap();
    assert_eq!(
        store.list_agents().unwrap(),
        vec![
            ("alpha".to_owned(), b"{\"v\":2}".to_vec()),
            ("mid".to_owned(), Vec::new()),
            ("zeta".to_owned(), b"{\"z\":1}".to_vec()),
        ]
    );
    assert_eq!(store.get_agent("mid").unwrap(), Some(Vec::new()));
    assert!(store.remove_agent("mid").unwrap());
    assert!(!store.remove_agent("mid").unwrap());
    assert_eq!(store.get_agent("mid").unwrap(), None);
    assert_eq!(store.list_agents().unwrap().len(), 2);
}

#[test]
fn state_crud() {
    let (_dir, _path, store) = temp_store();
    assert_eq!(store.get_state("last_publish").unwrap(), None);
    store.put_state("last_publish", b"1").unwrap();
    store.put_state("last_publish", b"2").unwrap();
    store.put_state("", b"empty key").unwrap();
    assert_eq!(
        store.get_state("last_publish").unwrap(),
        Some(b"2".to_vec())
    );
    assert_eq!(store.get_state("").unwrap(), Some(b"empty key".to_vec()));
    // Agents and state are separate namespaces.
    assert_eq!(store.get_agent("last_publish").unwrap(), None);
    store.flush().unwrap();
}

#[test]
fn state_prefix_scan_remove_and_move_to_a_hire() {
    let (_dir, path, store) = temp_store();
    store.put_state("sandbox-ahead/1-10", b"a").unwrap();
    store.put_state("sandbox-ahead/2-20", b"b").unwrap();
    store.put_state("sandbox-aheaz", b"not mine").unwrap();
    store.put_state("sandbox-ahea", b"not mine either").unwrap();
    let rows = store.states_with_prefix("sandbox-ahead/").unwrap();
    assert_eq!(
        rows,
        vec![
            ("sandbox-ahead/1-10".to_owned(), b"a".to_vec()),
            ("sandbox-ahead/2-20".to_owned(), b"b".to_vec()),
        ]
    );
    assert!(store.remove_state("sandbox-ahead/1-10").unwrap());
    assert!(!store.remove_state("sandbox-ahead/1-10").unwrap());
    // A row moves to a hire's blob in one commit, deferred: visible at once, durable with the
    // next immediate commit.
    let hire = Hash::digest(b"hire");
    store
        .put_hire_blob_taking_state(&hire, "sandbox", b"b", "sandbox-ahead/2-20", false)
        .unwrap();
    assert_eq!(
        store.get_hire_blob(&hire, "sandbox").unwrap(),
        Some(b"b".to_vec())
    );
    assert!(
        store
            .states_with_prefix("sandbox-ahead/")
            .unwrap()
            .is_empty()
    );
    assert!(store.has_unsynced());
    store.flush().unwrap();
    drop(store);
    let store = Store::open(&path, &StoreConfig::default()).unwrap();
    assert_eq!(
        store.get_hire_blob(&hire, "sandbox").unwrap(),
        Some(b"b".to_vec())
    );
    assert_eq!(
        store.get_state("sandbox-aheaz").unwrap(),
        Some(b"not mine".to_vec())
    );
    assert!(
        store
            .states_with_prefix("sandbox-ahead/")
            .unwrap()
            .is_empty()
    );
}

#[test]
fn new_store_has_current_schema() {
    let (_dir, path, store) = temp_store();
    assert_eq!(SCHEMA_VERSION, 3);
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    drop(store);
    let meta = raw_rows(&path, "meta");
    assert_eq!(
        meta,
        vec![(
            b"schema_version".to_vec(),
            SCHEMA_VERSION.to_be_bytes().to_vec()
        )]
    );
    // Every table exists, so read transactions never meet TableDoesNotExist.
    let db = redb::Database::open(&path).unwrap();
    let txn = db.begin_read().unwrap();
    let names: BTreeSet<String> = txn
        .list_tables()
        .unwrap()
        .map(|t| redb::TableHandle::name(&t).to_owned())
        .collect();
    let expected: BTreeSet<String> = [
        "agents",
        "equivocations",
        "hire_blobs",
        "hires",
        "manifest_expiry",
        "manifest_latest",
        "manifests",
        "meta",
        "node_state",
        "outbox",
        "outcomes",
        "receipt_payloads",
        "receipts",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(names, expected);
}

#[test]
fn schema_too_new_is_refused_untouched() {
    let (_dir, path, store) = temp_store();
    drop(store);
    set_raw_version(&path, Some(&99u32.to_be_bytes()));
    let err = Store::open(&path, &small()).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SchemaTooNew {
                found: 99,
                supported: 3
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("99") && msg.contains('3'), "{msg}");
    // The version row is unchanged.
    assert_eq!(
        raw_rows(&path, "meta"),
        vec![(b"schema_version".to_vec(), 99u32.to_be_bytes().to_vec())]
    );
}

#[test]
fn v0_file_without_version_is_migrated() {
    // A v0 file: a `meta` table with unrelated content and no version, no other table.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(RAW_META).unwrap();
            meta.insert(b"created_by".as_slice(), b"souk 0.0".as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let store = Store::open(&path, &small()).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    // Every table is usable.
    let m = manifest(&provider_key(), "csv-analyst", 3, T0 + DAY);
    store.put_manifest(&m).unwrap();
    store.put_agent("a", b"{}").unwrap();
    assert_eq!(store.list_agents().unwrap().len(), 1);
    assert_eq!(store.get_state("k").unwrap(), None);
    assert_eq!(store.remove_expired(T0 + DAY).unwrap(), vec![m.id()]);
    store
        .append_receipt(&Hash([1; 32]), 0, b"e0", None, None)
        .unwrap();
    assert_eq!(store.receipt_count(&Hash([1; 32])).unwrap(), 1);
    drop(store);
    // The old content is kept.
    let meta = raw_rows(&path, "meta");
    assert!(meta.contains(&(b"created_by".to_vec(), b"souk 0.0".to_vec())));
}

#[test]
fn explicit_old_version_is_migrated() {
    let (_dir, path, store) = temp_store();
    store.put_state("kept", b"yes").unwrap();
    drop(store);
    set_raw_version(&path, Some(&0u32.to_be_bytes()));
    let store = Store::open(&path, &small()).unwrap();
    assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    assert_eq!(store.get_state("kept").unwrap(), Some(b"yes".to_vec()));
}

#[test]
fn malformed_version_is_an_open_error() {
    let (_dir, path, store) = temp_store();
    drop(store);
    set_raw_version(&path, Some(b"\x01"));
    let err = Store::open(&path, &small()).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("schema_version"), "{msg}");
}

#[test]
fn missing_table_is_recreated() {
    let (_dir, path, store) = temp_store();
    store.put_agent("a", b"1").unwrap();
    drop(store);
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        let def: TableDefinition<'_, &[u8], &[u8]> = TableDefinition::new("node_state");
        assert!(txn.delete_table(def).unwrap());
        txn.commit().unwrap();
    }
    let store = Store::open(&path, &small()).unwrap();
    assert_eq!(store.get_state("k").unwrap(), None);
    assert_eq!(store.get_agent("a").unwrap(), Some(b"1".to_vec()));
}

/// Deterministic pseudo-random bytes (xorshift64*).
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

#[test]
fn garbage_files_are_open_errors() {
    let dir = tempfile::tempdir().unwrap();
    for (i, bytes) in [
        noise(64 * 1024, 7),
        noise(3, 9),
        b"SQLite format 3\0".to_vec(),
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.path().join(format!("garbage-{i}.redb"));
        std::fs::write(&path, &bytes).unwrap();
        let err = Store::open(&path, &small()).unwrap_err();
        assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        // The file is left as it was.
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }
}

#[test]
fn damaged_files_are_open_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.redb");
    {
        let store = Store::open(&path, &small()).unwrap();
        let key = provider_key();
        for i in 0..40 {
            store
                .put_manifest(&manifest(&key, &format!("agent-{i}"), 1, T0 + i))
                .unwrap();
        }
        store.put_agent("a", b"{}").unwrap();
    }
    let good = std::fs::read(&path).unwrap();
    let mut refused = 0;
    // Damage 64 bytes at offsets spread over the file (the header, live pages, free pages).
    for off in (0..good.len()).step_by(good.len() / 40) {
        let mut bad = good.clone();
        let end = (off + 64).min(bad.len());
        for b in &mut bad[off..end] {
            *b ^= 0x5a;
        }
        std::fs::write(&path, &bad).unwrap();
        match Store::open(&path, &small()) {
            Err(err) => {
                assert!(matches!(err, StoreError::Open { .. }), "at {off}: {err:?}");
                assert!(err.to_string().contains(&path.display().to_string()));
                assert!(
                    std::fs::read(&path).unwrap() == bad,
                    "at {off}: file modified"
                );
                refused += 1;
            }
            // Damage confined to unused space: the store works.
            Ok(store) => {
                assert_eq!(store.manifest_count().unwrap(), 40, "at {off}");
                assert_eq!(store.all_manifests().unwrap().len(), 40, "at {off}");
                assert_eq!(store.list_agents().unwrap().len(), 1, "at {off}");
            }
        }
    }
    assert!(refused > 0);
}

#[test]
fn unopenable_paths_are_open_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-dir").join("store.redb");
    let err = Store::open(&path, &small()).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
    assert!(err.to_string().contains("missing-dir"), "{err}");

    // A directory is not a database file.
    let err = Store::open(dir.path(), &small()).unwrap_err();
    assert!(matches!(err, StoreError::Open { .. }), "{err:?}");
}

#[test]
fn a_second_open_of_the_same_file_fails_cleanly() {
    let (_dir, path, store) = temp_store();
    let err = Store::open(&path, &small()).unwrap_err();
    assert!(
        matches!(&err, StoreError::Locked { path: p } if *p == path),
        "{err:?}"
    );
    drop(store);
    Store::open(&path, &small()).unwrap();
}

#[test]
fn small_cache_sizes_open_and_work() {
    let dir = tempfile::tempdir().unwrap();
    for (i, cache_size) in [0usize, 64 * 1024, 1024 * 1024].into_iter().enumerate() {
        let path = dir.path().join(format!("cache-{i}.redb"));
        let store = Store::open(&path, &StoreConfig { cache_size }).unwrap();
        let m = manifest(&provider_key(), "csv-analyst", 3, T0 + DAY);
        store.put_manifest(&m).unwrap();
        assert_eq!(store.get_manifest(&m.id()).unwrap(), Some(m.to_bytes()));
    }
    assert_eq!(StoreConfig::default().cache_size, 64 * 1024 * 1024);
}

#[test]
fn shared_between_threads() {
    let (_dir, _path, store) = temp_store();
    let store = Arc::new(store);
    let threads: Vec<_> = (0..2u8)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let key = other_key(0x70 + t);
                for seq in 1..=5 {
                    let m = manifest(&key, "agent", seq, T0 + DAY);
                    let outcome = store.put_manifest(&m).unwrap();
                    assert!(matches!(outcome, PutOutcome::Inserted { .. }));
                    let _ = store.manifest_count().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(store.manifest_count().unwrap(), 2);
}

#[test]
fn a_reannouncement_keeps_the_id_and_replaces_the_stored_manifest() {
    let (_dir, path, store) = temp_store();
    let key = provider_key();
    let provider = *key.id().as_bytes();
    let v1 = manifest(&key, "csv-analyst", 1, T0 + DAY);
    let v2 = reannounced(&key, &v1, 2, T0 + 2 * DAY);
    assert_eq!(v1.id(), v2.id(), "unchanged content keeps its manifest id");
    assert_ne!(v1.envelope_id(), v2.envelope_id());
    store.put_manifest(&v1).unwrap();
    assert_eq!(
        store.put_manifest(&v2).unwrap(),
        PutOutcome::Inserted {
            replaced: Some(v1.id())
        }
    );
    // The older announcement is stale now, not a duplicate.
    assert_eq!(
        store.put_manifest(&v1).unwrap(),
        PutOutcome::Stale { current_seq: 2 }
    );
    assert_eq!(store.manifest_count().unwrap(), 1);
    // Its expiry row moved with it: sweeping at the first expiry keeps it.
    assert!(store.remove_expired(T0 + DAY).unwrap().is_empty());
    drop(store);
    let store = Store::open(&path, &small()).unwrap();
    assert_eq!(store.get_manifest(&v1.id()).unwrap(), Some(v2.to_bytes()));
    assert_eq!(
        store.latest_seq(&provider, "csv-analyst").unwrap(),
        Some((2, v2.id()))
    );
}

#[test]
fn manifest_batches_apply_in_order_and_last_after_a_flush() {
    use souk_store::ManifestWrite;
    let (_dir, path, store) = temp_store();
    let key = provider_key();
    let a3 = manifest(&key, "a", 3, T0 + DAY);
    let a4 = manifest(&key, "a", 4, T0 + DAY);
    let b1 = manifest(&other_key(9), "b", 1, T0 + DAY);
    let writes = vec![
        ManifestWrite::Put(Box::new(a3.clone())),
        ManifestWrite::Put(Box::new(b1.clone())),
        // Replaces a3; the stale copy after it changes nothing.
        ManifestWrite::Put(Box::new(a4.clone())),
        ManifestWrite::Put(Box::new(a3.clone())),
        ManifestWrite::Remove(b1.id()),
    ];
    assert_eq!(store.write_manifests_deferred(&writes).unwrap(), 4);
    // Nothing left to change: rolled back, not committed.
    assert_eq!(
        store
            .write_manifests_deferred(&[ManifestWrite::Put(Box::new(a4.clone()))])
            .unwrap(),
        0
    );
    store.flush().unwrap();
    drop(store);
    let store = Store::open(&path, &small()).unwrap();
    assert_eq!(store.get_manifest(&a4.id()).unwrap(), Some(a4.to_bytes()));
    assert_eq!(store.get_manifest(&a3.id()).unwrap(), None);
    assert_eq!(store.get_manifest(&b1.id()).unwrap(), None);
    assert_eq!(
        store.latest_seq(key.id().as_bytes(), "a").unwrap(),
        Some((4, a4.id()))
    );
    assert_eq!(store.manifest_count().unwrap(), 1);
}

#[cfg(feature = "fault-injection")]
#[test]
fn injected_write_failures_write_nothing_then_stop() {
    let (_dir, _path, store) = temp_store();
    store.inject_write_failures(2);
    for _ in 0..2 {
        let err = store.put_state("k", b"v").unwrap_err();
        assert!(matches!(err, StoreError::Injected { .. }), "{err:?}");
    }
    assert_eq!(store.get_state("k").unwrap(), None);
    store.put_state("k", b"v").unwrap();
    assert_eq!(store.get_state("k").unwrap().as_deref(), Some(&b"v"[..]));
}
