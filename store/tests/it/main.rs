//! The store's integration tests, linked as one binary. `contract::` is the `Store` contract,
//! run once per backend by `scripts/contract.sh` (`TEST_DATABASE_URL` selects it); the others
//! run once, by the Makefile's `unit`, against the local servers.

mod common;

mod connect_problems;
mod contract;
mod disk_full;
mod sqlite_close;
