//! Integration tests of tessera-blob against real RocksDB shards in temporary directories.

mod conformance;
mod placement_props;
mod chunking_props;
mod store;
