//! gRPC clients to other nodes, one lazily connected channel per address.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tessera_proto::internal::v1::peer_client::PeerClient;
use tonic::transport::{Channel, Endpoint};

/// Largest gRPC message a node sends or accepts: a 64 MiB chunk plus framing.
pub const MAX_MESSAGE_BYTES: usize = 72 * 1024 * 1024;

/// Pool of peer clients keyed by address; cheap clones share one channel.
#[derive(Default)]
pub struct Peers {
    channels: Mutex<HashMap<String, Channel>>,
}

impl Peers {
    /// Returns a client for the node at `addr` (host:port). It connects on first
    /// use, and reconnects by itself after the peer restarts.
    pub fn client(&self, addr: &str) -> PeerClient<Channel> {
        let channel = {
            let mut channels = self.channels.lock().expect("peer pool lock poisoned");
            channels
                .entry(addr.to_string())
                .or_insert_with(|| connect_lazy(addr))
                .clone()
        };
        PeerClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

/// Creates a channel that connects on first use.
///
/// # Panics
///
/// When `addr` does not form a URI; the Cluster service checks node
/// addresses before they enter the cluster map.
pub fn connect_lazy(addr: &str) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("host:port forms a valid URI")
        .connect_timeout(Duration::from_secs(1))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5))
        .connect_lazy()
}
