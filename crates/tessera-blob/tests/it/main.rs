//! Integration tests of tessera-blob against real RocksDB shards in temporary directories.

mod chunking_props;
mod conformance;
mod placement_props;
mod store;
