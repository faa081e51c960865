//! Checks every request passes before anything parses or stores it: nesting and NUL bytes.
//!
//! async-graphql's parser is a recursive-descent (PEG) parser, and its own recursion limit is
//! checked only *after* parsing, on selection sets. A 4 KB document of 2,000 nested list or
//! object literals (`cluster(name: [[[[…]]]])`) therefore overflowed a worker thread's stack and
//! aborted the whole process. The document is scanned here, as plain text in one pass with no
//! recursion, and refused before the parser sees it.
//!
//! PostgreSQL `text` cannot hold a NUL byte: a string argument carrying one reached the database
//! and came back as an internal error (500). GraphQL has no use for NUL in any argument this API
//! takes, so it is refused at the edge, whether it arrives raw, as the `\u0000` escape in the
//! document or inside a JSON variable.

use async_graphql::{Value as ConstValue, Variables};

/// Deepest nesting of `{`, `[` and `(` a document may have, and of lists and objects in
/// variables. The selection depth limit is 12 and no argument of this schema takes input nested
/// deeper than 3, so 64 leaves room for any real query (GraphiQL's introspection nests about 12
/// deep) while keeping the parser's recursion far from a 2 MiB worker stack.
pub const MAX_NESTING: usize = 64;

/// Why a request was refused before parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Brackets, braces or parentheses nest deeper than [`MAX_NESTING`].
    TooDeep {
        /// Where: `query` or `variables`.
        place: &'static str,
    },
    /// A NUL character in the query or a variable.
    NulByte {
        /// Where: `query` or `variables`.
        place: &'static str,
    },
}

impl Rejection {
    /// The message clients see: what was refused, the limit and why.
    pub fn message(&self) -> String {
        match self {
            Rejection::TooDeep { place } => format!(
                "the {place} nests lists, objects or selections more than {MAX_NESTING} deep \
                 (limit: nesting {MAX_NESTING})"
            ),
            Rejection::NulByte { place } => {
                format!("the {place} contains a NUL character (\\u0000), which no argument accepts")
            }
        }
    }
}

/// Checks a GraphQL document's text: nesting outside strings and comments, and NUL characters
/// (raw anywhere, or escaped as `\u0000` in a string).
pub fn check_document(query: &str) -> Result<(), Rejection> {
    const PLACE: &str = "query";
    let bytes = query.as_bytes();
    if bytes.contains(&0) {
        return Err(Rejection::NulByte { place: PLACE });
    }
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                // Block string: only `\"""` escapes; no `\u` escapes exist inside.
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    if bytes[i] == b'\\' {
                        if bytes[i..].starts_with(b"\\u0000") {
                            return Err(Rejection::NulByte { place: PLACE });
                        }
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(Rejection::TooDeep { place: PLACE });
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Checks variables: nesting of lists and objects, and NUL characters in strings, enum values
/// and object keys. Iterative, so the check itself cannot overflow.
pub fn check_variables(variables: &Variables) -> Result<(), Rejection> {
    const PLACE: &str = "variables";
    let mut stack: Vec<(&ConstValue, usize)> = Vec::new();
    for (name, value) in variables.iter() {
        if name.contains('\0') {
            return Err(Rejection::NulByte { place: PLACE });
        }
        stack.push((value, 1));
    }
    while let Some((value, depth)) = stack.pop() {
        if depth > MAX_NESTING {
            return Err(Rejection::TooDeep { place: PLACE });
        }
        match value {
            ConstValue::String(s) if s.contains('\0') => {
                return Err(Rejection::NulByte { place: PLACE });
            }
            ConstValue::Enum(s) if s.contains('\0') => {
                return Err(Rejection::NulByte { place: PLACE });
            }
            ConstValue::List(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
            ConstValue::Object(fields) => {
                for (k, v) in fields {
                    if k.contains('\0') {
                        return Err(Rejection::NulByte { place: PLACE });
                    }
                    stack.push((v, depth + 1));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks a whole request: its document, then its variables.
pub fn check(request: &async_graphql::Request) -> Result<(), Rejection> {
    check_document(&request.query)?;
    check_variables(&request.variables)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(open: &str, close: &str, n: usize) -> String {
        format!("{}1{}", open.repeat(n), close.repeat(n))
    }

    #[test]
    fn a_document_nested_past_the_limit_is_refused_before_parsing() {
        let deep = format!(
            "{{ cluster(name: {}) {{ name }} }}",
            nested("[", "]", 2_000)
        );
        assert_eq!(
            check_document(&deep),
            Err(Rejection::TooDeep { place: "query" })
        );
        let objects = format!(
            "{{ cluster(name: {}) {{ name }} }}",
            nested("{a: ", "}", 2_000)
        );
        assert!(matches!(
            check_document(&objects),
            Err(Rejection::TooDeep { .. })
        ));
        let default = format!(
            "query($x: [String] = {}) {{ clusters {{ name }} }}",
            nested("[", "]", 500)
        );
        assert!(matches!(
            check_document(&default),
            Err(Rejection::TooDeep { .. })
        ));
    }

    #[test]
    fn brackets_inside_strings_and_comments_do_not_count() {
        let q = format!(
            "# {}\n{{ cluster(name: \"{}\") {{ name }} }} \"\"\"{}\"\"\"",
            "[".repeat(200),
            "{".repeat(200),
            "(".repeat(200)
        );
        assert_eq!(check_document(&q), Ok(()));
    }

    #[test]
    fn nul_is_refused_raw_or_escaped_but_other_escapes_pass() {
        assert!(matches!(
            check_document("{ cluster(name: \"a\\u0000b\") { name } }"),
            Err(Rejection::NulByte { .. })
        ));
        assert!(matches!(
            check_document("{ cluster(name: \"a\0b\") { name } }"),
            Err(Rejection::NulByte { .. })
        ));
        assert_eq!(
            check_document("{ cluster(name: \"a\\\\u0000b \\u0041\") { name } }"),
            Ok(()),
            "an escaped backslash followed by u0000 is text, not a NUL"
        );
    }

    #[test]
    fn variables_are_checked_for_depth_and_nul_without_recursion() {
        let mut v = serde_json::json!(1);
        for _ in 0..500 {
            v = serde_json::json!([v]);
        }
        let vars = Variables::from_json(serde_json::json!({ "x": v }));
        assert_eq!(
            check_variables(&vars),
            Err(Rejection::TooDeep { place: "variables" })
        );
        let vars = Variables::from_json(serde_json::json!({ "x": { "k": ["ok", "a\u{0}b"] } }));
        assert!(matches!(
            check_variables(&vars),
            Err(Rejection::NulByte { .. })
        ));
        let vars = Variables::from_json(serde_json::json!({ "x": { "k": ["ok"] } }));
        assert_eq!(check_variables(&vars), Ok(()));
    }
}
