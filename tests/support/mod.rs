//! The end-to-end tests' harness: the node's shared test kit (`souk_node::testkit`, feature
//! `test-utils`), re-exported so every test file reads `support::…`.
#![allow(unused_imports, unreachable_pub)]

pub use souk_node::testkit::*;
