//! The agents this node provides (the `agents` table) and small node state (the `node_state`
//! table). Both store opaque bytes chosen by the node under a UTF-8 key.

use redb::ReadableTable;

use crate::error::{DbContext, StoreError};
use crate::tables;
use crate::{Finish, Store};

impl Store {
    /// Stores (or replaces) the record of local agent `name`. The record is opaque to the
    /// store; the node keeps JSON in it.
    pub fn put_agent(&self, name: &str, record: &[u8]) -> Result<(), StoreError> {
        self.put_raw(tables::AGENTS, "agents", name, record)
    }

    /// The record of local agent `name`, if stored.
    pub fn get_agent(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_raw(tables::AGENTS, "agents", name)
    }

    /// Every local agent with its record, sorted by name (byte order of the UTF-8 names).
    pub fn list_agents(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.read(|txn| {
            let agents = txn.open_table(tables::AGENTS).ctx("opening table agents")?;
            let mut all = Vec::new();
            for row in agents.iter().ctx("scanning agents")? {
                let (key, value) = row.ctx("scanning agents")?;
                all.push((
                    tables::decode_name(key.value(), "agents")?,
                    value.value().to_vec(),
                ));
            }
            Ok(all)
        })
    }

    /// Deletes local agent `name`. Returns whether it was stored.
    pub fn remove_agent(&self, name: &str) -> Result<bool, StoreError> {
        self.remove_raw(tables::AGENTS, "agents", name)
    }

    /// Stores (or replaces) node state `key` (for example `"last_publish"`).
    pub fn put_state(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.put_raw(tables::NODE_STATE, "node_state", key, value)
    }

    /// Node state `key`, if stored.
    pub fn get_state(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_raw(tables::NODE_STATE, "node_state", key)
    }

    /// Deletes node state `key`. Returns whether it was stored.
    pub fn remove_state(&self, key: &str) -> Result<bool, StoreError> {
        self.remove_raw(tables::NODE_STATE, "node_state", key)
    }

    /// Every node state row whose key starts with `prefix`, in key order.
    pub fn states_with_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.read(|txn| {
            let t = txn
                .open_table(tables::NODE_STATE)
                .ctx("opening table node_state")?;
            let mut found = Vec::new();
            for row in t.range(prefix.as_bytes()..).ctx("scanning node_state")? {
                let (key, value) = row.ctx("scanning node_state")?;
                if !key.value().starts_with(prefix.as_bytes()) {
                    break;
                }
                found.push((
                    tables::decode_name(key.value(), "node_state")?,
                    value.value().to_vec(),
                ));
            }
            Ok(found)
        })
    }

    /// Inserts `key -> value` into `table` in its own durable transaction.
    fn put_raw(
        &self,
        table: tables::Bytes,
        table_name: &str,
        key: &str,
        value: &[u8],
    ) -> Result<(), StoreError> {
        self.write(table_name, |txn| {
            let mut t = txn
                .open_table(table)
                .with_ctx(|| format!("opening table {table_name}"))?;
            t.insert(key.as_bytes(), value)
                .with_ctx(|| format!("writing {table_name} {key:?}"))?;
            Ok(())
        })
    }

    /// Deletes `key` from `table` in its own durable transaction (none when it is absent);
    /// returns whether it was stored.
    fn remove_raw(
        &self,
        table: tables::Bytes,
        table_name: &str,
        key: &str,
    ) -> Result<bool, StoreError> {
        self.write_or_abort(table_name, |txn| {
            let mut t = txn
                .open_table(table)
                .with_ctx(|| format!("opening table {table_name}"))?;
            let existed = t
                .remove(key.as_bytes())
                .with_ctx(|| format!("removing {table_name} {key:?}"))?
                .is_some();
            Ok(if existed {
                Finish::Commit(true)
            } else {
                Finish::Abort(false)
            })
        })
    }

    /// Reads `key` from `table`.
    fn get_raw(
        &self,
        table: tables::Bytes,
        table_name: &str,
        key: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(|txn| {
            let t = txn
                .open_table(table)
                .with_ctx(|| format!("opening table {table_name}"))?;
            let found = t
                .get(key.as_bytes())
                .with_ctx(|| format!("reading {table_name} {key:?}"))?;
            Ok(found.map(|guard| guard.value().to_vec()))
        })
    }
}
