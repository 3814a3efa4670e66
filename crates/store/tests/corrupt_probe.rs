#![allow(clippy::unwrap_used, missing_docs)]
use souk_protocol::vectors::{T0, manifest_body, provider_key};
use souk_protocol::Signed;
use souk_store::{Store, StoreConfig};

#[test]
fn probe() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.redb");
    {
        let s = Store::open(&path, &StoreConfig::default()).unwrap();
        for i in 0..50u64 {
            let mut b = manifest_body(&provider_key());
            b.name = format!("n{i}");
            b.expires_at = T0 + i;
            s.put_manifest(&Signed::sign(b, &provider_key())).unwrap();
        }
        s.put_agent("a", b"x").unwrap();
    }
    let good = std::fs::read(&path).unwrap();
    println!("len {}", good.len());
    let mut panics = 0; let mut errs = 0; let mut oks = 0;
    for off in (0..good.len()).step_by(good.len() / 200) {
        let mut bad = good.clone();
        for b in &mut bad[off..(off + 64).min(good.len())] { *b ^= 0x5a; }
        std::fs::write(&path, &bad).unwrap();
        let r = std::panic::catch_unwind(|| {
            match Store::open(&path, &StoreConfig::default()) {
                Ok(s) => { let _ = s.all_manifests(); let _ = s.list_agents(); let _ = s.remove_expired(T0 + 100); "ok".to_string() }
                Err(e) => format!("err {e}"),
            }
        });
        match r { Err(_) => { panics += 1; println!("{off}: PANIC") }, Ok(s) if s.starts_with("err") => { errs += 1; println!("{off}: {s}") }, Ok(_) => oks += 1 }
    }
    println!("panics {panics} errs {errs} oks {oks}");
}
