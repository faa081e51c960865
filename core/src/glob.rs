//! Shell-style globs (`*`, `?`) for namespace allow/deny lists in export policies.

/// True when `text` matches `pattern`; `*` matches any run of characters, `?` exactly one.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with single-star backtracking: linear in practice, no recursion.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// A glob must be non-empty and use only characters that can appear in a namespace, plus `*`/`?`.
pub fn validate_namespace_glob(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("glob must not be empty".into());
    }
    if !pattern
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'*' | b'?'))
    {
        return Err(format!(
            "glob {pattern:?} may only contain lower case alphanumeric characters, '-', '*' and '?'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_and_question_mark() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("team-*", "team-a"));
        assert!(!glob_match("team-*", "other"));
        assert!(glob_match("t?am", "team"));
        assert!(glob_match("*-prod", "payments-prod"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
        assert!(glob_match("kube-system", "kube-system"));
        assert!(!glob_match("", "x"));
    }

    #[test]
    fn glob_validation_names_bad_characters() {
        assert!(validate_namespace_glob("team-*").is_ok());
        assert_eq!(
            validate_namespace_glob("Team/*").unwrap_err(),
            "glob \"Team/*\" may only contain lower case alphanumeric characters, '-', '*' and '?'"
        );
        assert_eq!(
            validate_namespace_glob("").unwrap_err(),
            "glob must not be empty"
        );
    }
}
