//! Behaviour of the hire tables of `souk_store::Store` (schema v2): hire records, receipt chains
//! (in order, duplicate, conflict, gap, payloads, pagination, atomicity), blobs, persistence,
//! the on-disk layout and the v1 -> v2 migration.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use proptest::prelude::*;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use souk_protocol::manifest::Manifest;
use souk_protocol::vectors::{T0, manifest_body, provider_key};
use souk_protocol::{Hash, Signed};
use souk_store::{Appended, SCHEMA_VERSION, Store, StoreConfig, StoreError};

type Raw = TableDefinition<'static, &'static [u8], &'static [u8]>;

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

/// A hire id; `hire(n)` and `hire(n + 1)` differ only in the last byte, so their receipt keys
/// are adjacent and a range scan that leaks past a hire would show.
fn hire(n: u8) -> Hash {
    let mut id = [0x5a; 32];
    id[31] = n;
    Hash(id)
}

/// Stand-in for a signed entry envelope: distinct per (hire, seq, variant).
fn entry(h: &Hash, seq: u64, variant: u8) -> Vec<u8> {
    format!("entry {} seq {seq} v{variant}", h.short()).into_bytes()
}

fn payload(seq: u64) -> Vec<u8> {
    format!("salt||payload {seq}").into_bytes()
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

fn receipt_key(h: &Hash, seq: u64) -> Vec<u8> {
    let mut key = h.0.to_vec();
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn all_receipts(store: &Store, h: &Hash) -> Vec<(u64, Vec<u8>)> {
    store.receipts(h, 0, usize::MAX).unwrap()
}

#[test]
fn append_in_order() {
    let (_dir, _path, store) = temp_store();
    let h = hire(1);
    assert_eq!(store.receipt_count(&h).unwrap(), 0);
    assert!(all_receipts(&store, &h).is_empty());
    for seq in 0..5 {
        let record = format!("{{\"state\":\"running\",\"seq\":{seq}}}");
        let outcome = store
            .append_receipt(
                &h,
                seq,
                &entry(&h, seq, 0),
                Some(&payload(seq)),
                Some(record.as_bytes()),
            )
            .unwrap();
        assert_eq!(outcome, Appended::New);
        assert_eq!(store.receipt_count(&h).unwrap(), seq + 1);
        assert_eq!(store.get_hire(&h).unwrap(), Some(record.into_bytes()));
    }
    let expected: Vec<_> = (0..5).map(|seq| (seq, entry(&h, seq, 0))).collect();
    assert_eq!(all_receipts(&store, &h), expected);
    // Neighbouring hires are independent chains.
    for other in [hire(0), hire(2)] {
        assert_eq!(store.receipt_count(&other).unwrap(), 0);
        assert!(all_receipts(&store, &other).is_empty());
        assert_eq!(
            store.append_receipt(&other, 0, b"x", None, None).unwrap(),
            Appended::New
        );
    }
    assert_eq!(store.receipt_count(&h).unwrap(), 5);
    assert_eq!(all_receipts(&store, &h), expected);
    // Without a record, the stored record is left alone; without a payload, none is stored.
    assert_eq!(
        store
            .append_receipt(&h, 5, &entry(&h, 5, 0), None, None)
            .unwrap(),
        Appended::New
    );
    assert_eq!(
        store.get_hire(&h).unwrap(),
        Some(b"{\"state\":\"running\",\"seq\":4}".to_vec())
    );
    assert_eq!(store.receipt_payloads(&h, 5, 10).unwrap(), Vec::new());
}

#[test]
fn duplicate_redelivery_writes_nothing() {
    let (_dir, _path, store) = temp_store();
    let h = hire(1);
    store
        .append_receipt(&h, 0, &entry(&h, 0, 0), Some(b"p0"), Some(b"r0"))
        .unwrap();
    store
        .append_receipt(&h, 1, &entry(&h, 1, 0), None, Some(b"r1"))
        .unwrap();
    for seq in [0, 1, 0] {
        // Same entry bytes; a different payload and record are ignored.
        let outcome = store
            .append_receipt(&h, seq, &entry(&h, seq, 0), Some(b"other"), Some(b"other"))
            .unwrap();
        assert_eq!(outcome, Appended::Duplicate);
    }
    assert_eq!(store.receipt_count(&h).unwrap(), 2);
    assert_eq!(store.get_hire(&h).unwrap(), Some(b"r1".to_vec()));
    assert_eq!(
        store.receipt_payloads(&h, 0, 10).unwrap(),
        vec![(0, b"p0".to_vec())]
    );
}

#[test]
fn conflict_is_refused_and_names_the_position() {
    let (_dir, _path, store) = temp_store();
    let h = hire(1);
    store
        .append_receipt(&h, 0, &entry(&h, 0, 0), None, None)
        .unwrap();
    store
        .append_receipt(&h, 1, &entry(&h, 1, 0), None, None)
        .unwrap();
    let err = store
        .append_receipt(&h, 0, &entry(&h, 0, 1), Some(b"p"), None)
        .unwrap_err();
    assert!(
        matches!(err, StoreError::ReceiptConflict { hire, seq: 0 } if hire == h),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&h.to_hex()) && msg.contains("seq 0"), "{msg}");
    // An empty entry against a stored one is a conflict too.
    assert!(matches!(
        store.append_receipt(&h, 1, b"", None, None),
        Err(StoreError::ReceiptConflict { seq: 1, .. })
    ));
    assert_eq!(
        all_receipts(&store, &h),
        vec![(0, entry(&h, 0, 0)), (1, entry(&h, 1, 0))]
    );
    assert!(store.receipt_payloads(&h, 0, 10).unwrap().is_empty());
}

#[test]
fn gap_is_refused() {
    let (_dir, _path, store) = temp_store();
    let h = hire(1);
    let err = store
        .append_receipt(&h, 1, &entry(&h, 1, 0), Some(b"p"), Some(b"r"))
        .unwrap_err();
    assert!(
        matches!(err, StoreError::ReceiptGap { hire, expected: 0, got: 1 } if hire == h),
        "{err:?}"
    );
    assert!(err.to_string().contains(&h.to_hex()), "{err}");
    assert_eq!(store.receipt_count(&h).unwrap(), 0);
    assert_eq!(store.get_hire(&h).unwrap(), None);
    for seq in 0..2 {
        store
            .append_receipt(&h, seq, &entry(&h, seq, 0), None, None)
            .unwrap();
    }
    for got in [3, 100, u64::MAX] {
        assert!(matches!(
            store.append_receipt(&h, got, &entry(&h, got, 0), Some(b"p"), None),
            Err(StoreError::ReceiptGap { expected: 2, got: g, .. }) if g == got
        ));
    }
    assert_eq!(store.receipt_count(&h).unwrap(), 2);
    assert!(store.receipt_payloads(&h, 0, 10).unwrap().is_empty());
    assert_eq!(store.receipts(&h, 2, 10).unwrap(), Vec::new());
}

#[test]
fn a_refused_append_leaves_the_hire_record_unchanged() {
    let (_dir, path, store) = temp_store();
    let h = hire(1);
    store.put_hire(&h, b"A").unwrap();
    store
        .append_receipt(&h, 0, &entry(&h, 0, 0), Some(b"p0"), Some(b"B"))
        .unwrap();
    assert_eq!(store.get_hire(&h).unwrap(), Some(b"B".to_vec()));
    // Conflict at 0, gap at 2, duplicate at 0: none of them writes the record or a payload.
    assert!(
        store
            .append_receipt(&h, 0, &entry(&h, 0, 9), Some(b"p9"), Some(b"C"))
            .is_err()
    );
    assert!(
        store
            .append_receipt(&h, 2, &entry(&h, 2, 0), Some(b"p2"), Some(b"D"))
            .is_err()
    );
    assert_eq!(
        store
            .append_receipt(&h, 0, &entry(&h, 0, 0), Some(b"pX"), Some(b"E"))
            .unwrap(),
        Appended::Duplicate
    );
    assert_eq!(store.get_hire(&h).unwrap(), Some(b"B".to_vec()));
    drop(store);
    assert_eq!(
        raw_rows(&path, "hires"),
        vec![(h.0.to_vec(), b"B".to_vec())]
    );
    assert_eq!(
        raw_rows(&path, "receipts"),
        vec![(receipt_key(&h, 0), entry(&h, 0, 0))]
    );
    assert_eq!(
        raw_rows(&path, "receipt_payloads"),
        vec![(receipt_key(&h, 0), b"p0".to_vec())]
    );
}

#[test]
fn payloads_round_trip_only_where_given() {
    let (_dir, _path, store) = temp_store();
    let h = hire(1);
    for seq in 0..7 {
        let p = (seq % 2 == 0).then(|| payload(seq));
        store
            .append_receipt(&h, seq, &entry(&h, seq, 0), p.as_deref(), None)
            .unwrap();
    }
    // An empty payload is stored and distinct from no payload.
    store
        .append_receipt(&h, 7, &entry(&h, 7, 0), Some(b""), None)
        .unwrap();
    let evens: Vec<_> = [0, 2, 4, 6].iter().map(|&s| (s, payload(s))).collect();
    let mut all = evens.clone();
    all.push((7, Vec::new()));
    assert_eq!(store.receipt_payloads(&h, 0, 100).unwrap(), all);
    assert_eq!(store.receipt_payloads(&h, 3, 100).unwrap(), all[2..]);
    assert_eq!(store.receipt_payloads(&h, 0, 2).unwrap(), evens[..2]);
    assert_eq!(store.receipt_payloads(&h, 0, 0).unwrap(), Vec::new());
    assert_eq!(store.receipt_payloads(&h, 8, 100).unwrap(), Vec::new());
    assert!(store.receipt_payloads(&hire(2), 0, 100).unwrap().is_empty());
    // Large payloads survive intact.
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    store
        .append_receipt(&h, 8, &entry(&h, 8, 0), Some(&big), None)
        .unwrap();
    assert_eq!(store.receipt_payloads(&h, 8, 1).unwrap(), vec![(8, big)]);
}

#[test]
fn receipts_paginate() {
    let (_dir, _path, store) = temp_store();
    let h = hire(1);
    // Neighbours on both sides of the key range.
    store
        .append_receipt(&hire(0), 0, b"before", None, None)
        .unwrap();
    store
        .append_receipt(&hire(2), 0, b"after", None, None)
        .unwrap();
    for seq in 0..25 {
        store
            .append_receipt(&h, seq, &entry(&h, seq, 0), None, None)
            .unwrap();
    }
    let expected: Vec<_> = (0..25).map(|seq| (seq, entry(&h, seq, 0))).collect();
    for limit in [1, 7, 25, 100] {
        let mut seen = Vec::new();
        let mut from = 0;
        loop {
            let page = store.receipts(&h, from, limit).unwrap();
            assert!(page.len() <= limit);
            let Some((last, _)) = page.last() else { break };
            from = last + 1;
            seen.extend(page);
        }
        assert_eq!(seen, expected, "limit {limit}");
    }
    assert_eq!(store.receipts(&h, 10, 3).unwrap(), expected[10..13]);
    assert_eq!(store.receipts(&h, 0, 0).unwrap(), Vec::new());
    assert_eq!(store.receipts(&h, 25, 10).unwrap(), Vec::new());
    assert_eq!(store.receipts(&h, u64::MAX, 10).unwrap(), Vec::new());
}

#[test]
fn list_hires_in_id_order() {
    let (_dir, _path, store) = temp_store();
    assert!(store.list_hires().unwrap().is_empty());
    assert_eq!(store.get_hire(&hire(3)).unwrap(), None);
    store.put_hire(&hire(3), b"three").unwrap();
    store.put_hire(&Hash([0; 32]), b"zero").unwrap();
    store.put_hire(&hire(1), b"one").unwrap();
    store.put_hire(&hire(3), b"three v2").unwrap();
    // Appending with a record creates the hire too.
    store
        .append_receipt(&hire(2), 0, b"e", None, Some(b"two"))
        .unwrap();
    assert_eq!(
        store.list_hires().unwrap(),
        vec![
            (Hash([0; 32]), b"zero".to_vec()),
            (hire(1), b"one".to_vec()),
            (hire(2), b"two".to_vec()),
            (hire(3), b"three v2".to_vec()),
        ]
    );
}

#[test]
fn blobs() {
    let (_dir, _path, store) = temp_store();
    let h = hire(1);
    assert_eq!(store.get_hire_blob(&h, "input").unwrap(), None);
    store.put_hire_blob(&h, "input", b"the input").unwrap();
    store.put_hire_blob(&h, "output", b"out v1").unwrap();
    store.put_hire_blob(&h, "output", b"out v2").unwrap();
    // A name that is a prefix of another, and the empty name, are distinct blobs.
    store.put_hire_blob(&h, "out", b"short").unwrap();
    store.put_hire_blob(&h, "", b"").unwrap();
    store
        .put_hire_blob(&hire(2), "input", b"other hire")
        .unwrap();
    assert_eq!(
        store.get_hire_blob(&h, "input").unwrap(),
        Some(b"the input".to_vec())
    );
    assert_eq!(
        store.get_hire_blob(&h, "output").unwrap(),
        Some(b"out v2".to_vec())
    );
    assert_eq!(
        store.get_hire_blob(&h, "out").unwrap(),
        Some(b"short".to_vec())
    );
    assert_eq!(store.get_hire_blob(&h, "").unwrap(), Some(Vec::new()));
    assert_eq!(store.get_hire_blob(&h, "outputs").unwrap(), None);
    assert_eq!(
        store.get_hire_blob(&hire(2), "input").unwrap(),
        Some(b"other hire".to_vec())
    );
    // Blobs do not create a hire record.
    assert_eq!(store.get_hire(&h).unwrap(), None);
    assert!(store.list_hires().unwrap().is_empty());
}

/// Deferred commits (receipts, blobs) are visible at once and counted as unsynced until an
/// immediate commit of anything follows; `flush` syncs only when something is unsynced.
#[test]
fn deferred_writes_are_unsynced_until_an_immediate_commit() {
    let (_dir, path, store) = temp_store();
    let h = hire(1);
    assert!(!store.has_unsynced());
    store.flush().unwrap();
    store
        .append_receipt_deferred(&h, 0, &entry(&h, 0, 0), None, None)
        .unwrap();
    assert!(store.has_unsynced());
    store.flush().unwrap();
    assert!(!store.has_unsynced());

    store.put_hire_blob_deferred(&h, "output", b"out").unwrap();
    assert!(store.has_unsynced());
    assert_eq!(
        store.get_hire_blob(&h, "output").unwrap(),
        Some(b"out".to_vec()),
        "visible before it is synced"
    );
    // An immediate commit (here the terminal entry) makes every deferred one before it durable.
    store
        .append_receipt(&h, 1, &entry(&h, 1, 0), None, None)
        .unwrap();
    assert!(!store.has_unsynced());
    // A write that changes nothing (a redelivery) commits nothing: nothing to sync.
    assert_eq!(
        store
            .append_receipt_deferred(&h, 1, &entry(&h, 1, 0), None, None)
            .unwrap(),
        Appended::Duplicate
    );
    assert!(!store.has_unsynced());
    store.flush().unwrap();
    drop(store);

    let store = Store::open(&path, &small()).unwrap();
    assert!(!store.has_unsynced());
    assert_eq!(all_receipts(&store, &h).len(), 2);
    assert_eq!(
        store.get_hire_blob(&h, "output").unwrap(),
        Some(b"out".to_vec())
    );
}

#[test]
fn put_hire_with_blobs_writes_everything() {
    let (_dir, path, store) = temp_store();
    let h = hire(1);
    store.put_hire_blob(&h, "checkpoint", b"cp1").unwrap();
    store
        .put_hire_with_blobs(
            &h,
            b"{\"state\":\"completed\"}",
            &[
                ("output", b"result".as_slice()),
                ("attestation", b"signed".as_slice()),
                ("output", b"result v2".as_slice()),
            ],
        )
        .unwrap();
    store.put_hire_with_blobs(&hire(2), b"r2", &[]).unwrap();
    assert_eq!(
        store.get_hire(&h).unwrap(),
        Some(b"{\"state\":\"completed\"}".to_vec())
    );
    assert_eq!(
        store.get_hire_blob(&h, "output").unwrap(),
        Some(b"result v2".to_vec())
    );
    assert_eq!(
        store.get_hire_blob(&h, "attestation").unwrap(),
        Some(b"signed".to_vec())
    );
    assert_eq!(
        store.get_hire_blob(&h, "checkpoint").unwrap(),
        Some(b"cp1".to_vec())
    );
    assert_eq!(store.get_hire(&hire(2)).unwrap(), Some(b"r2".to_vec()));
    drop(store);
    // Layout per spec/store.md: hire id ++ utf8(name), sorted by name within a hire.
    let key = |name: &str| {
        let mut k = h.0.to_vec();
        k.extend_from_slice(name.as_bytes());
        k
    };
    assert_eq!(
        raw_rows(&path, "hire_blobs"),
        vec![
            (key("attestation"), b"signed".to_vec()),
            (key("checkpoint"), b"cp1".to_vec()),
            (key("output"), b"result v2".to_vec()),
        ]
    );
}

#[test]
fn everything_survives_reopen_and_the_chain_continues() {
    let (_dir, path, store) = temp_store();
    let h = hire(1);
    for seq in 0..3 {
        store
            .append_receipt(&h, seq, &entry(&h, seq, 0), Some(&payload(seq)), Some(b"r"))
            .unwrap();
    }
    store.put_hire_blob(&h, "input", b"in").unwrap();
    drop(store);

    let store = Store::open(&path, &small()).unwrap();
    assert_eq!(store.receipt_count(&h).unwrap(), 3);
    assert_eq!(store.get_hire(&h).unwrap(), Some(b"r".to_vec()));
    assert_eq!(
        store.get_hire_blob(&h, "input").unwrap(),
        Some(b"in".to_vec())
    );
    assert_eq!(store.receipt_payloads(&h, 0, 10).unwrap().len(), 3);
    assert_eq!(
        store
            .append_receipt(&h, 2, &entry(&h, 2, 0), None, None)
            .unwrap(),
        Appended::Duplicate
    );
    assert!(matches!(
        store.append_receipt(&h, 4, b"e", None, None),
        Err(StoreError::ReceiptGap {
            expected: 3,
            got: 4,
            ..
        })
    ));
    assert_eq!(
        store
            .append_receipt(&h, 3, &entry(&h, 3, 0), None, None)
            .unwrap(),
        Appended::New
    );
    drop(store);
    // Byte layout of `receipts`: hire id ++ u64 BE seq -> entry bytes, in seq order.
    let rows = raw_rows(&path, "receipts");
    let expected: Vec<_> = (0..4)
        .map(|seq| (receipt_key(&h, seq), entry(&h, seq, 0)))
        .collect();
    assert_eq!(rows, expected);
}

#[test]
fn concurrent_redelivery_stores_each_entry_once() {
    let (_dir, _path, store) = temp_store();
    let store = Arc::new(store);
    let h = hire(1);
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let mut new = 0;
                for seq in 0..10 {
                    match store
                        .append_receipt(&h, seq, &entry(&h, seq, 0), None, None)
                        .unwrap()
                    {
                        Appended::New => new += 1,
                        Appended::Duplicate => {}
                    }
                }
                new
            })
        })
        .collect();
    let new: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(new, 10);
    assert_eq!(store.receipt_count(&h).unwrap(), 10);
}

/// Writes a file exactly as schema v1 (spec/store.md, version 1) lays it out, with some rows,
/// using redb directly.
fn write_v1_file(path: &Path, manifest: &Signed<Manifest>) {
    let db = redb::Database::create(path).unwrap();
    let txn = db.begin_write().unwrap();
    {
        for name in [
            "meta",
            "manifests",
            "manifest_latest",
            "manifest_expiry",
            "agents",
            "node_state",
        ] {
            txn.open_table(Raw::new(name)).unwrap();
        }
        let body = manifest.body();
        let id = manifest.id();
        let mut latest_key = body.provider.as_bytes().to_vec();
        latest_key.extend_from_slice(body.name.as_bytes());
        let mut latest_value = body.seq.to_be_bytes().to_vec();
        latest_value.extend_from_slice(&id.0);
        let mut expiry_key = body.expires_at.to_be_bytes().to_vec();
        expiry_key.extend_from_slice(&id.0);
        let rows: [(&str, &[u8], &[u8]); 6] = [
            ("meta", b"schema_version", &1u32.to_be_bytes()),
            ("manifests", &id.0, &manifest.to_bytes()),
            ("manifest_latest", &latest_key, &latest_value),
            ("manifest_expiry", &expiry_key, b""),
            ("agents", b"csv-analyst", b"{\"enabled\":true}"),
            ("node_state", b"last_publish", b"123"),
        ];
        for (table, key, value) in rows {
            txn.open_table(Raw::new(table))
                .unwrap()
                .insert(key, value)
                .unwrap();
        }
    }
    txn.commit().unwrap();
}

#[test]
fn v1_file_migrates_to_the_current_version_keeping_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.redb");
    let key = provider_key();
    let mut body = manifest_body(&key);
    body.name = "csv-analyst".into();
    body.seq = 3;
    body.expires_at = T0 + 1000;
    let m = Signed::sign(body, &key);
    write_v1_file(&path, &m);

    let store = Store::open(&path, &small()).unwrap();
    assert_eq!(SCHEMA_VERSION, 3);
    assert_eq!(store.schema_version().unwrap(), 3);
    // The v1 data is kept.
    assert_eq!(store.get_manifest(&m.id()).unwrap(), Some(m.to_bytes()));
    assert_eq!(
        store
            .latest_seq(key.id().as_bytes(), "csv-analyst")
            .unwrap(),
        Some((3, m.id()))
    );
    assert_eq!(
        store.get_agent("csv-analyst").unwrap(),
        Some(b"{\"enabled\":true}".to_vec())
    );
    assert_eq!(
        store.get_state("last_publish").unwrap(),
        Some(b"123".to_vec())
    );
    // The new tables exist and work.
    let h = hire(1);
    assert!(store.list_hires().unwrap().is_empty());
    assert_eq!(store.receipt_count(&h).unwrap(), 0);
    store
        .append_receipt(&h, 0, b"e0", Some(b"p0"), Some(b"r"))
        .unwrap();
    store.put_hire_blob(&h, "input", b"in").unwrap();
    assert_eq!(store.remove_expired(T0 + 1000).unwrap(), vec![m.id()]);
    drop(store);
    assert_eq!(
        raw_rows(&path, "meta"),
        vec![(b"schema_version".to_vec(), 3u32.to_be_bytes().to_vec())]
    );
    assert_eq!(raw_rows(&path, "receipts").len(), 1);
    // Opening again runs no migration and keeps everything.
    let store = Store::open(&path, &small()).unwrap();
    assert_eq!(store.schema_version().unwrap(), 3);
    assert_eq!(store.get_hire(&h).unwrap(), Some(b"r".to_vec()));
}

/// An entry the model accepted, with its payload.
type Accepted = (Vec<u8>, Option<Vec<u8>>);

/// One `append_receipt` call of the property test.
#[derive(Clone, Debug)]
struct Op {
    hire: u8,
    seq: u64,
    variant: u8,
    with_payload: bool,
}

fn op() -> impl Strategy<Value = Op> {
    (0u8..3, 0u64..7, 0u8..3, any::<bool>()).prop_map(|(hire, seq, variant, with_payload)| Op {
        hire,
        seq,
        // Mostly the canonical entry (variant 0), sometimes a conflicting one.
        variant: u8::from(variant == 2),
        with_payload,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Random appends (in order, duplicates, conflicts, gaps) keep every chain exactly
    /// `0..n`, each entry the first one accepted at its seq, and match a model.
    #[test]
    fn chains_are_always_exactly_0_to_n(ops in prop::collection::vec(op(), 0..40)) {
        let (_dir, _path, store) = temp_store();
        // Model: per hire, the accepted (entry, payload) at each seq.
        let mut model: BTreeMap<u8, Vec<Accepted>> = BTreeMap::new();
        for op in ops {
            let h = hire(op.hire);
            let e = entry(&h, op.seq, op.variant);
            let p = op.with_payload.then(|| payload(op.seq));
            let chain = model.entry(op.hire).or_default();
            let len = chain.len() as u64;
            let got = store.append_receipt(&h, op.seq, &e, p.as_deref(), Some(&e));
            if op.seq < len {
                let stored = &chain[op.seq as usize].0;
                if *stored == e {
                    prop_assert_eq!(got.unwrap(), Appended::Duplicate);
                } else {
                    let is_conflict = matches!(
                        got,
                        Err(StoreError::ReceiptConflict { seq, .. }) if seq == op.seq
                    );
                    prop_assert!(is_conflict);
                }
            } else if op.seq == len {
                prop_assert_eq!(got.unwrap(), Appended::New);
                chain.push((e, p));
            } else {
                let is_gap = matches!(
                    got,
                    Err(StoreError::ReceiptGap { expected, got, .. })
                        if expected == len && got == op.seq
                );
                prop_assert!(is_gap);
            }
        }
        for n in 0..3u8 {
            let h = hire(n);
            let chain = model.get(&n).cloned().unwrap_or_default();
            prop_assert_eq!(store.receipt_count(&h).unwrap(), chain.len() as u64);
            let stored = all_receipts(&store, &h);
            let seqs: Vec<u64> = stored.iter().map(|(s, _)| *s).collect();
            prop_assert_eq!(seqs, (0..chain.len() as u64).collect::<Vec<_>>());
            let entries: Vec<Vec<u8>> = stored.into_iter().map(|(_, e)| e).collect();
            let expected: Vec<Vec<u8>> = chain.iter().map(|(e, _)| e.clone()).collect();
            prop_assert_eq!(entries, expected);
            let payloads = store.receipt_payloads(&h, 0, usize::MAX).unwrap();
            let expected: Vec<(u64, Vec<u8>)> = chain
                .iter()
                .enumerate()
                .filter_map(|(seq, (_, p))| p.clone().map(|p| (seq as u64, p)))
                .collect();
            prop_assert_eq!(payloads, expected);
            // The record is the one written with the last accepted entry.
            prop_assert_eq!(store.get_hire(&h).unwrap(), chain.last().map(|(e, _)| e.clone()));
        }
    }
}

#[test]
fn append_receipts_stores_a_page_in_one_transaction_or_nothing() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store = souk_store::Store::open(
        &dir.path().join("s.redb"),
        &souk_store::StoreConfig::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let hire = souk_protocol::Hash::digest(b"batch");
    let items: Vec<souk_store::ReceiptItem<'_>> = vec![
        (0, b"e0".as_slice(), None),
        (1, b"e1".as_slice(), Some(b"p1".as_slice())),
        (2, b"e2".as_slice(), None),
    ];
    assert_eq!(
        store.append_receipts(&hire, &items, Some(b"rec")).ok(),
        Some(3)
    );
    assert_eq!(store.receipt_count(&hire).ok(), Some(3));
    assert_eq!(
        store.get_hire(&hire).ok().flatten().as_deref(),
        Some(b"rec".as_slice())
    );
    // Redelivery of a stored prefix plus one new entry: only the new one is added.
    let more: Vec<souk_store::ReceiptItem<'_>> =
        vec![(2, b"e2".as_slice(), None), (3, b"e3".as_slice(), None)];
    assert_eq!(store.append_receipts(&hire, &more, None).ok(), Some(1));
    // A conflict anywhere in the page writes nothing, not even the valid entries before it.
    let bad: Vec<souk_store::ReceiptItem<'_>> =
        vec![(4, b"e4".as_slice(), None), (3, b"other".as_slice(), None)];
    assert!(
        store
            .append_receipts(&hire, &bad, Some(b"changed"))
            .is_err()
    );
    assert_eq!(store.receipt_count(&hire).ok(), Some(4));
    assert_eq!(
        store.get_hire(&hire).ok().flatten().as_deref(),
        Some(b"rec".as_slice())
    );
    // A gap writes nothing.
    let gap: Vec<souk_store::ReceiptItem<'_>> = vec![(6, b"e6".as_slice(), None)];
    assert!(store.append_receipts(&hire, &gap, None).is_err());
    assert_eq!(store.receipt_count(&hire).ok(), Some(4));
}

#[test]
fn delete_hire_removes_everything_of_that_hire_only() {
    let (_dir, path, store) = temp_store();
    for h in [hire(1), hire(2), hire(3)] {
        store
            .put_hire_with_blobs(&h, b"record", &[("input", b"in"), ("salt", b"s")])
            .unwrap();
        for seq in 0..3 {
            let p = payload(seq);
            store
                .append_receipt(&h, seq, &entry(&h, seq, 0), Some(&p), None)
                .unwrap();
        }
    }
    assert!(store.delete_hire(&hire(2)).unwrap());
    assert!(
        !store.delete_hire(&hire(2)).unwrap(),
        "a second delete finds nothing"
    );
    assert_eq!(store.get_hire(&hire(2)).unwrap(), None);
    assert_eq!(store.receipt_count(&hire(2)).unwrap(), 0);
    assert_eq!(store.get_hire_blob(&hire(2), "input").unwrap(), None);
    assert!(store.receipt_payloads(&hire(2), 0, 10).unwrap().is_empty());
    // The neighbours (adjacent keys) are untouched.
    for h in [hire(1), hire(3)] {
        assert_eq!(store.get_hire(&h).unwrap().as_deref(), Some(&b"record"[..]));
        assert_eq!(store.receipt_count(&h).unwrap(), 3);
        assert_eq!(store.receipt_payloads(&h, 0, 10).unwrap().len(), 3);
        assert_eq!(
            store.get_hire_blob(&h, "salt").unwrap().as_deref(),
            Some(&b"s"[..])
        );
    }
    drop(store);
    // Nothing of hire 2 is left on disk, in any table.
    for table in ["hires", "receipts", "receipt_payloads", "hire_blobs"] {
        assert!(
            raw_rows(&path, table)
                .iter()
                .all(|(k, _)| !k.starts_with(&hire(2).0)),
            "{table} still holds rows of the deleted hire"
        );
    }
}
