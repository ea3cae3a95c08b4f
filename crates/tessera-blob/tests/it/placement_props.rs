//! Properties of rendezvous placement.

use std::collections::{BTreeSet, HashSet};

use proptest::prelude::*;
use tessera_blob::placement::{place, rank, NodeLabel};
use tessera_blob::BlobId;

/// Generates up to 12 nodes with distinct ids, each in one of 3 sites and 3 zones.
fn cluster() -> impl Strategy<Value = Vec<NodeLabel>> {
    let ids = proptest::collection::btree_set(any::<u64>(), 1..=12);
    ids.prop_flat_map(|ids| {
        let count = ids.len();
        let domains = proptest::collection::vec((0u8..3, 0u8..3), count);
        (Just(ids), domains)
    })
    .prop_map(|(ids, domains)| {
        ids.into_iter()
            .zip(domains)
            .map(|(id, (site, zone))| NodeLabel {
                id,
                site: format!("site-{site}"),
                zone: format!("zone-{zone}"),
            })
            .collect()
    })
}

/// Generates a cluster whose first two nodes are in different sites.
fn multi_site_cluster() -> impl Strategy<Value = Vec<NodeLabel>> {
    cluster()
        .prop_filter("needs two nodes", |nodes| nodes.len() >= 2)
        .prop_map(|mut nodes| {
            nodes[0].site = "site-a".to_string();
            nodes[1].site = "site-b".to_string();
            nodes
        })
}

fn blob_ids() -> impl Strategy<Value = Vec<BlobId>> {
    proptest::collection::vec(any::<[u8; 32]>().prop_map(BlobId), 64)
}

proptest! {
    #[test]
    fn place_returns_capped_distinct_nodes(
        nodes in cluster(),
        r in 0usize..8,
        blob in any::<[u8; 32]>().prop_map(BlobId),
    ) {
        let placement = place(&blob, &nodes, r);
        let distinct: HashSet<u64> = placement.iter().copied().collect();
        let known: HashSet<u64> = nodes.iter().map(|node| node.id).collect();
        prop_assert_eq!(placement.len(), r.min(nodes.len()));
        prop_assert_eq!(distinct.len(), placement.len());
        prop_assert!(distinct.is_subset(&known));
    }

    #[test]
    fn place_ignores_input_order(
        nodes in cluster(),
        r in 0usize..8,
        blob in any::<[u8; 32]>().prop_map(BlobId),
    ) {
        let mut reversed = nodes.clone();
        reversed.reverse();
        let first = place(&blob, &nodes, r);
        let again = place(&blob, &nodes, r);
        prop_assert_eq!(&first, &again);
        prop_assert_eq!(&first, &place(&blob, &reversed, r));
    }

    #[test]
    fn rank_is_deterministic_permutation(
        nodes in cluster(),
        blob in any::<[u8; 32]>().prop_map(BlobId),
    ) {
        let ranked = rank(&blob, &nodes);
        let sorted: BTreeSet<u64> = ranked.iter().copied().collect();
        let known: BTreeSet<u64> = nodes.iter().map(|node| node.id).collect();
        prop_assert_eq!(ranked.len(), nodes.len());
        prop_assert_eq!(sorted, known);
        prop_assert_eq!(ranked, rank(&blob, &nodes));
    }

    #[test]
    fn removing_node_moves_only_its_blobs(
        nodes in cluster(),
        removed in any::<prop::sample::Index>(),
        r in 1usize..5,
        blobs in blob_ids(),
    ) {
        let gone = nodes[removed.index(nodes.len())].id;
        let remaining: Vec<NodeLabel> = nodes.iter().filter(|node| node.id != gone).cloned().collect();
        for blob in &blobs {
            let before = place(blob, &nodes, r);
            let after = place(blob, &remaining, r);
            if !before.contains(&gone) {
                prop_assert_eq!(&before, &after, "blob {} moved without node {}", blob, gone);
            }
        }
    }

    #[test]
    fn adding_node_moves_only_blobs_it_takes(
        nodes in cluster(),
        added_id in any::<u64>(),
        added_domain in (0u8..4, 0u8..4),
        r in 1usize..5,
        blobs in blob_ids(),
    ) {
        prop_assume!(nodes.iter().all(|node| node.id != added_id));
        let mut grown = nodes.clone();
        grown.push(NodeLabel {
            id: added_id,
            site: format!("site-{}", added_domain.0),
            zone: format!("zone-{}", added_domain.1),
        });
        for blob in &blobs {
            let before = place(blob, &nodes, r);
            let after = place(blob, &grown, r);
            if !after.contains(&added_id) {
                prop_assert_eq!(&before, &after, "blob {} moved without node {}", blob, added_id);
            }
        }
    }

    #[test]
    fn replicas_span_two_sites(
        nodes in multi_site_cluster(),
        r in 2usize..5,
        blobs in blob_ids(),
    ) {
        for blob in &blobs {
            let placement = place(blob, &nodes, r);
            let sites: HashSet<&str> = nodes
                .iter()
                .filter(|node| placement.contains(&node.id))
                .map(|node| node.site.as_str())
                .collect();
            prop_assert!(sites.len() >= 2, "blob {} placed in sites {:?}", blob, sites);
        }
    }
}
