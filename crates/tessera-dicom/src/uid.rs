//! Syntax of DICOM unique identifiers (PS3.5 section 9.1).

/// Maximum length of a UID in characters, from PS3.5 section 9.1.
const MAX_UID_LENGTH: usize = 64;

/// Checks the syntax of a UID: dot-separated components of digits, each
/// without a leading zero unless it is exactly "0", at most 64 characters.
///
/// Padding must already be removed, so "1.2.3\0" is invalid.
pub fn is_valid_uid(uid: &str) -> bool {
    if uid.is_empty() || uid.len() > MAX_UID_LENGTH {
        return false;
    }

    uid.split('.').all(is_valid_component)
}

fn is_valid_component(component: &str) -> bool {
    let all_digits = !component.is_empty() && component.bytes().all(|b| b.is_ascii_digit());
    let leading_zero = component.len() > 1 && component.starts_with('0');

    all_digits && !leading_zero
}

#[cfg(test)]
mod tests {
    use super::is_valid_uid;

    #[test]
    fn accepts_standard_uids() {
        assert!(is_valid_uid("1.2.840.10008.1.2.1"));
        assert!(is_valid_uid("0"));
        assert!(is_valid_uid("2.25.0.1"));
    }

    #[test]
    fn rejects_malformed_uids() {
        assert!(!is_valid_uid(""));
        assert!(!is_valid_uid("1.02.3"));
        assert!(!is_valid_uid("1..2"));
        assert!(!is_valid_uid(".1.2"));
        assert!(!is_valid_uid("1.2."));
        assert!(!is_valid_uid("1.2.a"));
        assert!(!is_valid_uid("1.2.3 "));
    }

    #[test]
    fn rejects_uid_longer_than_64_characters() {
        let sixty_four = format!("1.{}", "2".repeat(62));
        let sixty_five = format!("1.{}", "2".repeat(63));

        assert!(is_valid_uid(&sixty_four));
        assert!(!is_valid_uid(&sixty_five));
    }
}
