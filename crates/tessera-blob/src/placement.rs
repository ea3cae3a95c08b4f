//! Choice of the nodes that store a blob's replicas, by rendezvous hashing.
//!
//! Every node scores every blob as the first 8 bytes, big-endian, of
//! SHA-256(blob id || node id as big-endian u64), and ties go to the lower node id.
//! The inputs are the same on every node, so every node computes the same
//! placement without coordination. Adding or removing a node moves only the blobs
//! whose placement includes that node.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use crate::BlobId;

/// A node and its failure domains. Zone names are scoped to their site, so zone
/// "a" of site "x" and zone "a" of site "y" are different zones.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct NodeLabel {
    pub id: u64,
    pub site: String,
    pub zone: String,
}

impl NodeLabel {
    /// Creates a label with an empty site and zone, for clusters without failure domains.
    pub fn unlabeled(id: u64) -> NodeLabel {
        NodeLabel {
            id,
            site: String::new(),
            zone: String::new(),
        }
    }
}

/// Returns all nodes in rendezvous order for this blob, highest score first.
///
/// The order is deterministic. A node id that appears more than once is listed once.
pub fn rank(blob: &BlobId, nodes: &[NodeLabel]) -> Vec<u64> {
    ranked_nodes(blob, nodes)
        .into_iter()
        .map(|node| node.id)
        .collect()
}

/// Returns the R target nodes: distinct, taking rank order but preferring a node
/// in a site not yet used, then a zone not yet used.
///
/// `r` is capped at the number of distinct node ids. With at least `r` sites the
/// replicas land in `r` different sites, and within the sites the same holds for zones.
pub fn place(blob: &BlobId, nodes: &[NodeLabel], r: usize) -> Vec<u64> {
    let ranked = ranked_nodes(blob, nodes);
    let target = r.min(ranked.len());

    let mut taken = vec![false; ranked.len()];
    let mut sites = HashSet::new();
    let mut zones = HashSet::new();
    let mut placement = Vec::with_capacity(target);
    while placement.len() < target {
        let available = |position: &usize| !taken[*position];
        let candidates = || (0..ranked.len()).filter(available);

        let new_site = candidates().find(|&i| !sites.contains(ranked[i].site.as_str()));
        let new_zone = || candidates().find(|&i| !zones.contains(&zone_key(ranked[i])));
        let pick = new_site
            .or_else(new_zone)
            .or_else(|| candidates().next())
            .expect("fewer picks than distinct nodes");

        let node = ranked[pick];
        taken[pick] = true;
        sites.insert(node.site.as_str());
        zones.insert(zone_key(node));
        placement.push(node.id);
    }

    placement
}

/// Sorts the nodes by descending score, then ascending id, dropping repeated ids.
fn ranked_nodes<'a>(blob: &BlobId, nodes: &'a [NodeLabel]) -> Vec<&'a NodeLabel> {
    let mut scored: Vec<(u64, &NodeLabel)> = nodes
        .iter()
        .map(|node| (score(blob, node.id), node))
        .collect();
    scored.sort_by(|(score_a, a), (score_b, b)| score_b.cmp(score_a).then(a.id.cmp(&b.id)));
    scored.dedup_by_key(|(_, node)| node.id);
    scored.into_iter().map(|(_, node)| node).collect()
}

fn score(blob: &BlobId, node: u64) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(blob.as_bytes());
    hasher.update(node.to_be_bytes());
    let digest = hasher.finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("8-byte prefix"))
}

fn zone_key(node: &NodeLabel) -> (&str, &str) {
    (node.site.as_str(), node.zone.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labeled(id: u64, site: &str, zone: &str) -> NodeLabel {
        NodeLabel {
            id,
            site: site.to_string(),
            zone: zone.to_string(),
        }
    }

    #[test]
    fn rank_lists_each_node_once() {
        let nodes: Vec<_> = (1..=5).map(NodeLabel::unlabeled).collect();
        let mut ranked = rank(&BlobId::of(b"x"), &nodes);
        ranked.sort_unstable();
        assert_eq!(ranked, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn rank_drops_repeated_id() {
        let nodes = vec![NodeLabel::unlabeled(7), NodeLabel::unlabeled(7)];
        assert_eq!(rank(&BlobId::of(b"x"), &nodes), vec![7]);
    }

    #[test]
    fn place_of_unlabeled_nodes_follows_rank() {
        let nodes: Vec<_> = (1..=6).map(NodeLabel::unlabeled).collect();
        let blob = BlobId::of(b"y");
        let ranked = rank(&blob, &nodes);
        assert_eq!(place(&blob, &nodes, 3), ranked[..3].to_vec());
    }

    #[test]
    fn place_prefers_unused_zone_within_one_site() {
        let nodes = vec![
            labeled(1, "s", "a"),
            labeled(2, "s", "a"),
            labeled(3, "s", "a"),
            labeled(4, "s", "b"),
        ];
        for seed in 0u32..50 {
            let blob = BlobId::of(&seed.to_be_bytes());
            let placement = place(&blob, &nodes, 2);
            assert!(placement.contains(&4), "blob {blob}: {placement:?}");
        }
    }

    #[test]
    fn place_with_zero_replicas_is_empty() {
        let nodes = vec![NodeLabel::unlabeled(1)];
        assert!(place(&BlobId::of(b"z"), &nodes, 0).is_empty());
    }

    #[test]
    fn place_with_no_nodes_is_empty() {
        assert!(place(&BlobId::of(b"z"), &[], 3).is_empty());
    }
}
