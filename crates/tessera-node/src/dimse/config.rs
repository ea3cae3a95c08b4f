//! The `[dimse]` section of a node's configuration.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::NodeError;

/// DICOM listener settings and the peers allowed to use it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DimseConfig {
    /// Address the DICOM listener binds; empty turns DIMSE off.
    pub listen: String,
    /// This node's AE title, at most 16 characters.
    pub ae_title: String,
    /// Reject an association whose Called AE Title is not `ae_title`.
    pub check_called_ae_title: bool,
    /// Accept callers that are not in `peers`, with store, query and
    /// retrieve rights. They cannot be C-MOVE destinations, because a
    /// destination needs an address.
    pub accept_unknown_callers: bool,
    /// Accept storage of SOP classes that the standard dictionary does not
    /// list (private or newer classes), as long as the data set parses.
    pub accept_unknown_sop_classes: bool,
    /// Maximum PDU length this node receives, in bytes; announced in the
    /// A-ASSOCIATE-AC and enforced on every PDU.
    pub max_pdu_length: u32,
    /// Associations served at once; further requests get a transient
    /// A-ASSOCIATE-RJ (local limit exceeded).
    pub max_associations: usize,
    /// Connections open at once from one IP address, counted from accept
    /// whether or not an association follows. A further connection from
    /// that address is closed at once.
    pub max_associations_per_address: usize,
    /// Time allowed for an A-ASSOCIATE-RQ after a connection opens, and for
    /// the peer's response to a request this node sends (the ARTIM timer).
    #[serde(with = "humantime_serde")]
    pub artim_timeout: Duration,
    /// An association is aborted when the peer sends no PDU for this long,
    /// or takes no bytes of a PDU this node is sending for this long.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// How long a storage commitment check that failed for lack of a Raft
    /// quorum is retried before every instance is reported as failed.
    #[serde(with = "humantime_serde")]
    pub commitment_retry_limit: Duration,
    /// Known DICOM peers and what each may do.
    pub peers: Vec<DimsePeer>,
}

/// A DICOM application entity that may associate with this node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct DimsePeer {
    pub ae_title: String,
    /// Host name or IP address where the peer listens (needed for C-MOVE
    /// destinations and storage commitment results on a new association).
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub port: u16,
    /// May send C-STORE and storage commitment requests.
    #[serde(default = "yes")]
    pub store: bool,
    /// May send C-FIND requests.
    #[serde(default = "yes")]
    pub query: bool,
    /// May send C-MOVE and C-GET requests.
    #[serde(default = "yes")]
    pub retrieve: bool,
    /// May be named as the destination of a C-MOVE.
    #[serde(default = "yes")]
    pub move_destination: bool,
}

fn yes() -> bool {
    true
}

/// What an association's caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rights {
    pub store: bool,
    pub query: bool,
    pub retrieve: bool,
}

impl Default for DimseConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:11112".into(),
            ae_title: "TESSERA".into(),
            check_called_ae_title: true,
            accept_unknown_callers: false,
            accept_unknown_sop_classes: true,
            max_pdu_length: 65_536,
            max_associations: 64,
            max_associations_per_address: 16,
            artim_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(300),
            commitment_retry_limit: Duration::from_secs(600),
            peers: Vec::new(),
        }
    }
}

impl DimseConfig {
    /// Checks the values that would break negotiation, naming the setting.
    pub fn validate(&self) -> Result<(), NodeError> {
        let invalid = |setting: &str, reason: String| NodeError::InvalidConfig {
            setting: format!("dimse.{setting}"),
            reason,
        };
        if !valid_ae_title(&self.ae_title) {
            let reason = format!(
                "{:?} must be 1 to 16 printable ASCII characters",
                self.ae_title
            );
            return Err(invalid("ae_title", reason));
        }
        if !(4096..=16_777_216).contains(&self.max_pdu_length) {
            let reason = format!("{} must be between 4096 and 16777216", self.max_pdu_length);
            return Err(invalid("max_pdu_length", reason));
        }
        if self.max_associations == 0 {
            return Err(invalid("max_associations", "must be at least 1".into()));
        }
        if self.max_associations_per_address == 0 {
            let reason = "must be at least 1".to_string();
            return Err(invalid("max_associations_per_address", reason));
        }
        for peer in &self.peers {
            if !valid_ae_title(&peer.ae_title) {
                let reason = format!(
                    "AE title {:?} must be 1 to 16 printable ASCII characters",
                    peer.ae_title
                );
                return Err(invalid("peers", reason));
            }
        }
        Ok(())
    }

    /// Returns the peer configured under `ae_title`, compared without padding.
    pub fn peer(&self, ae_title: &str) -> Option<&DimsePeer> {
        let wanted = ae_title.trim();
        self.peers
            .iter()
            .find(|peer| peer.ae_title.trim() == wanted)
    }

    /// Returns the rights of a caller, or None when it must be rejected.
    pub fn rights_of(&self, calling_ae_title: &str) -> Option<Rights> {
        match self.peer(calling_ae_title) {
            Some(peer) => Some(Rights {
                store: peer.store,
                query: peer.query,
                retrieve: peer.retrieve,
            }),
            None if self.accept_unknown_callers => Some(Rights {
                store: true,
                query: true,
                retrieve: true,
            }),
            None => None,
        }
    }
}

fn valid_ae_title(title: &str) -> bool {
    let trimmed = title.trim();
    !trimmed.is_empty()
        && title.len() <= 16
        && title
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && b != b'\\')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_caller_is_rejected_by_default() {
        let config = DimseConfig::default();

        assert_eq!(config.rights_of("MODALITY"), None);
    }

    #[test]
    fn peer_rights_follow_config() {
        let text = r#"
            ae_title = "ARCHIVE"
            [[peers]]
            ae_title = "VIEWER"
            store = false
        "#;
        let config: DimseConfig = toml::from_str(text).unwrap();

        let rights = config.rights_of("VIEWER  ").expect("known peer");
        assert!(!rights.store);
        assert!(rights.query);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn long_ae_title_is_invalid() {
        let config = DimseConfig {
            ae_title: "A_TITLE_LONGER_THAN_16".into(),
            ..DimseConfig::default()
        };

        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("dimse.ae_title"), "{error}");
    }
}
