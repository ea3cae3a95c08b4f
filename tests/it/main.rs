//! Cluster tests: every test starts its own cluster of real node processes on
//! 127.0.0.1 (through `tessera cluster local`), with RocksDB on disk and gRPC
//! over sockets, and drives it as a client would.

mod bad_input;
mod corpus;
mod dicomweb;
mod dimse;
mod dimse_convert;
mod dimse_hostile;
mod dimse_interop;
mod dimse_qr;
mod dimse_tools;
mod duplicates;
mod failover;
mod harness;
mod membership;
mod query;
mod rereplication;
mod sequence_query;
