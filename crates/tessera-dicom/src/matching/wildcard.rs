//! Wildcard matching with `*` (any run of characters) and `?` (one character).

/// Tells whether `text` matches `pattern`, comparing characters exactly.
///
/// Backtracks only to the most recent `*`, which is enough because a later
/// `*` can absorb anything an earlier one could, so the cost is at most
/// `pattern.len() * text.len()` steps.
pub(crate) fn wildcard_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();

    let mut p = 0;
    let mut t = 0;
    // Position of the last `*` seen and of the text where its run started.
    let mut last_star: Option<(usize, usize)> = None;

    while t < text.len() {
        if p < pattern.len() && pattern[p] == '*' {
            last_star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if let Some((star, run_start)) = last_star {
            // Let the last `*` absorb one more character and retry after it.
            p = star + 1;
            t = run_start + 1;
            last_star = Some((star, run_start + 1));
        } else {
            return false;
        }
    }

    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn star_matches_any_run() {
        assert!(wildcard_match("SM*", "SMITH"));
        assert!(wildcard_match("*TH", "SMITH"));
        assert!(wildcard_match("S*I*H", "SMITH"));
        assert!(wildcard_match("SMITH*", "SMITH"));
    }

    #[test]
    fn question_mark_matches_one_character() {
        assert!(wildcard_match("SM?TH", "SMITH"));
        assert!(!wildcard_match("SM?TH", "SMTH"));
        assert!(wildcard_match("?", "É"));
    }

    #[test]
    fn literal_mismatch_fails() {
        assert!(!wildcard_match("SM*X", "SMITH"));
        assert!(!wildcard_match("SMITH", "SMITHS"));
    }

    #[test]
    fn star_backtracks_over_repeated_prefix() {
        assert!(wildcard_match("*AB", "AAB"));
        assert!(wildcard_match("*A*B", "XAXAXB"));
    }

    #[test]
    fn star_in_text_does_not_stop_pattern_star() {
        assert!(wildcard_match("*A", "*BA"));
    }
}
