//! Command set fields and status codes of DIMSE (PS3.7 section 9 and 10,
//! annex C), and builders for the responses this node sends.

use dicom_core::{Tag, VR};
use tessera_dicom::dimse::DataSet;

pub const AFFECTED_SOP_CLASS_UID: Tag = Tag(0x0000, 0x0002);
pub const REQUESTED_SOP_CLASS_UID: Tag = Tag(0x0000, 0x0003);
pub const COMMAND_FIELD: Tag = Tag(0x0000, 0x0100);
pub const MESSAGE_ID: Tag = Tag(0x0000, 0x0110);
pub const MESSAGE_ID_BEING_RESPONDED_TO: Tag = Tag(0x0000, 0x0120);
pub const MOVE_DESTINATION: Tag = Tag(0x0000, 0x0600);
pub const PRIORITY: Tag = Tag(0x0000, 0x0700);
pub const COMMAND_DATA_SET_TYPE: Tag = Tag(0x0000, 0x0800);
pub const STATUS: Tag = Tag(0x0000, 0x0900);
pub const ERROR_COMMENT: Tag = Tag(0x0000, 0x0902);
pub const AFFECTED_SOP_INSTANCE_UID: Tag = Tag(0x0000, 0x1000);
pub const EVENT_TYPE_ID: Tag = Tag(0x0000, 0x1002);
pub const ACTION_TYPE_ID: Tag = Tag(0x0000, 0x1008);
pub const REMAINING_SUB_OPERATIONS: Tag = Tag(0x0000, 0x1020);
pub const COMPLETED_SUB_OPERATIONS: Tag = Tag(0x0000, 0x1021);
pub const FAILED_SUB_OPERATIONS: Tag = Tag(0x0000, 0x1022);
pub const WARNING_SUB_OPERATIONS: Tag = Tag(0x0000, 0x1023);
pub const MOVE_ORIGINATOR_AE_TITLE: Tag = Tag(0x0000, 0x1030);
pub const MOVE_ORIGINATOR_MESSAGE_ID: Tag = Tag(0x0000, 0x1031);

pub const C_STORE_RQ: u16 = 0x0001;
pub const C_STORE_RSP: u16 = 0x8001;
pub const C_GET_RQ: u16 = 0x0010;
pub const C_GET_RSP: u16 = 0x8010;
pub const C_FIND_RQ: u16 = 0x0020;
pub const C_FIND_RSP: u16 = 0x8020;
pub const C_MOVE_RQ: u16 = 0x0021;
pub const C_MOVE_RSP: u16 = 0x8021;
pub const C_ECHO_RQ: u16 = 0x0030;
pub const C_ECHO_RSP: u16 = 0x8030;
pub const N_EVENT_REPORT_RQ: u16 = 0x0100;
pub const N_EVENT_REPORT_RSP: u16 = 0x8100;
pub const N_ACTION_RQ: u16 = 0x0130;
pub const N_ACTION_RSP: u16 = 0x8130;
pub const C_CANCEL_RQ: u16 = 0x0FFF;

/// Command Data Set Type value meaning that no data set follows.
pub const NO_DATA_SET: u16 = 0x0101;
/// Command Data Set Type value this node sends when a data set follows.
pub const DATA_SET_PRESENT: u16 = 0x0000;

/// DIMSE status codes used by this node.
pub mod status {
    pub const SUCCESS: u16 = 0x0000;
    pub const PENDING: u16 = 0xFF00;
    pub const CANCEL: u16 = 0xFE00;
    /// Some C-MOVE or C-GET sub-operations failed or had warnings.
    pub const SUB_OPERATIONS_WARNING: u16 = 0xB000;
    pub const DUPLICATE_SOP_INSTANCE: u16 = 0x0111;
    pub const NO_SUCH_SOP_CLASS: u16 = 0x0118;
    pub const NOT_AUTHORIZED: u16 = 0x0124;
    pub const UNRECOGNIZED_OPERATION: u16 = 0x0211;
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    pub const UNABLE_TO_PERFORM_SUB_OPERATIONS: u16 = 0xA702;
    pub const MOVE_DESTINATION_UNKNOWN: u16 = 0xA801;
    pub const IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS: u16 = 0xA900;
    /// C-STORE: the data set's SOP Class or SOP Instance UID differs from
    /// the request's Affected SOP Class or Instance UID (same code as above).
    pub const DATA_SET_DOES_NOT_MATCH_SOP_CLASS: u16 = 0xA900;
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
    pub const UNABLE_TO_PROCESS: u16 = 0xC001;
}

/// Largest Error Comment: its VR is LO, 64 characters.
const ERROR_COMMENT_MAX: usize = 64;

pub fn command_field(command: &DataSet) -> Option<u16> {
    command.u16(COMMAND_FIELD)
}

pub fn message_id(command: &DataSet) -> u16 {
    command.u16(MESSAGE_ID).unwrap_or(0)
}

pub fn has_data_set(command: &DataSet) -> bool {
    command.u16(COMMAND_DATA_SET_TYPE) != Some(NO_DATA_SET)
}

/// Starts a response to `request`: command field, the message ID responded to,
/// status, and the affected SOP class copied from the request.
pub fn response(request: &DataSet, field: u16, status: u16, has_data: bool) -> DataSet {
    let mut set = DataSet::default();
    set.put_u16(COMMAND_FIELD, field);
    set.put_u16(MESSAGE_ID_BEING_RESPONDED_TO, message_id(request));
    set.put_u16(STATUS, status);
    set.put_u16(
        COMMAND_DATA_SET_TYPE,
        if has_data {
            DATA_SET_PRESENT
        } else {
            NO_DATA_SET
        },
    );
    let class = request
        .text(AFFECTED_SOP_CLASS_UID)
        .or_else(|| request.text(REQUESTED_SOP_CLASS_UID));
    if let Some(class) = class {
        set.put_text(AFFECTED_SOP_CLASS_UID, VR::UI, &class);
    }
    set
}

/// Adds an Error Comment cut to the 64 characters that LO allows, keeping
/// the end, where messages built here put the UID that names the problem.
pub fn with_error_comment(mut set: DataSet, comment: &str) -> DataSet {
    let ascii: String = comment
        .chars()
        .map(|c| if c.is_ascii() && c != '\\' { c } else { '?' })
        .collect();
    let start = ascii.len().saturating_sub(ERROR_COMMENT_MAX);
    set.put_text(ERROR_COMMENT, VR::LO, &ascii[start..]);
    set
}

/// Sub-operation counts of a C-MOVE or C-GET.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubOperations {
    pub remaining: u16,
    pub completed: u16,
    pub failed: u16,
    pub warning: u16,
}

impl SubOperations {
    /// Writes the counts; `remaining` only while the operation is pending,
    /// as PS3.4 C.4.2.1.6 allows it to be absent in the final response.
    pub fn write(&self, set: &mut DataSet, pending: bool) {
        if pending {
            set.put_u16(REMAINING_SUB_OPERATIONS, self.remaining);
        }
        set.put_u16(COMPLETED_SUB_OPERATIONS, self.completed);
        set.put_u16(FAILED_SUB_OPERATIONS, self.failed);
        set.put_u16(WARNING_SUB_OPERATIONS, self.warning);
    }

    /// Final status: success, 0xB000 when some failed or warned, 0xA702
    /// when every sub-operation failed.
    pub fn final_status(&self) -> u16 {
        let attempted = self.completed + self.failed + self.warning;
        if self.failed == 0 && self.warning == 0 {
            status::SUCCESS
        } else if self.failed == attempted {
            status::UNABLE_TO_PERFORM_SUB_OPERATIONS
        } else {
            status::SUB_OPERATIONS_WARNING
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_comment_keeps_the_uid_at_the_end() {
        let uid = "1.2.826.0.1.3680043.8.498.12345678901234567890123456789012";
        let set = with_error_comment(DataSet::default(), &format!("a long explanation for {uid}"));

        let comment = set.text(ERROR_COMMENT).unwrap();
        assert_eq!(comment.len(), 64);
        assert!(comment.ends_with(uid), "{comment}");
    }

    #[test]
    fn final_status_reflects_failures() {
        let all_good = SubOperations {
            completed: 3,
            ..Default::default()
        };
        let some_failed = SubOperations {
            completed: 2,
            failed: 1,
            ..Default::default()
        };
        let all_failed = SubOperations {
            failed: 2,
            ..Default::default()
        };

        assert_eq!(all_good.final_status(), status::SUCCESS);
        assert_eq!(some_failed.final_status(), status::SUB_OPERATIONS_WARNING);
        assert_eq!(
            all_failed.final_status(),
            status::UNABLE_TO_PERFORM_SUB_OPERATIONS
        );
    }
}
