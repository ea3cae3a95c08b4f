//! Normalization of person names (VR PN).

/// Normalized form of a person name used for index keys: uppercased, components trimmed, trailing empty components dropped.
///
/// Each component group (alphabetic, ideographic, phonetic, separated by
/// '=') is normalized on its own and trailing empty groups are dropped too.
/// Multiple names separated by '\\' are normalized one by one, so
/// `"Smith ^ John^^^"` and `"SMITH^JOHN"` yield the same key.
pub fn normalize_person_name(name: &str) -> String {
    name.split('\\')
        .map(normalize_single_name)
        .collect::<Vec<_>>()
        .join("\\")
}

/// Tells whether every non-empty component group of a PN key matches the
/// group at the same position of a stored name, so the key "Yamada^Tarou"
/// or "=山田^太郎" matches "Yamada^Tarou=山田^太郎=やまだ^たろう". Empty key
/// groups match anything, but a key without any group matches nothing here.
///
/// Both names are expected in normalized form (see [`normalize_person_name`]).
pub(crate) fn groups_match(
    key: &str,
    stored: &str,
    group_matches: impl Fn(&str, &str) -> bool,
) -> bool {
    let stored_groups: Vec<&str> = stored.split('=').collect();
    let mut compared = false;

    for (position, key_group) in key.split('=').enumerate() {
        if key_group.is_empty() {
            continue;
        }
        let stored_group = stored_groups.get(position).copied().unwrap_or("");
        if !group_matches(key_group, stored_group) {
            return false;
        }
        compared = true;
    }
    compared
}

fn normalize_single_name(name: &str) -> String {
    let mut groups: Vec<String> = name.split('=').map(normalize_group).collect();

    while groups.last().is_some_and(String::is_empty) {
        groups.pop();
    }
    groups.join("=")
}

fn normalize_group(group: &str) -> String {
    let mut components: Vec<&str> = group
        .split('^')
        .map(|component| component.trim_matches([' ', '\0']))
        .collect();

    while components
        .last()
        .is_some_and(|component| component.is_empty())
    {
        components.pop();
    }
    components.join("^").to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::normalize_person_name;

    #[test]
    fn drops_trailing_empty_components() {
        assert_eq!(normalize_person_name("Smith^John^^^"), "SMITH^JOHN");
    }

    #[test]
    fn trims_components() {
        assert_eq!(normalize_person_name(" Smith ^ John "), "SMITH^JOHN");
    }

    #[test]
    fn keeps_inner_empty_components() {
        assert_eq!(normalize_person_name("Smith^^Dr"), "SMITH^^DR");
    }

    #[test]
    fn normalizes_each_component_group() {
        assert_eq!(
            normalize_person_name("Yamada^Tarou=山田^太郎=やまだ^たろう=="),
            "YAMADA^TAROU=山田^太郎=やまだ^たろう"
        );
    }

    #[test]
    fn keeps_empty_leading_group() {
        assert_eq!(normalize_person_name("=山田^太郎"), "=山田^太郎");
    }

    #[test]
    fn normalizes_each_value() {
        assert_eq!(normalize_person_name("a^b^\\c^^"), "A^B\\C");
    }
}
