//! Field-level validation with precise errors.
//!
//! Every rule returns a [`ValidationError`] that names the field path (`spec.gateway.port`) and a
//! reason a user can act on. Rules mirror the Kubernetes API server's wording where one exists, so
//! an error seen in linkplane reads like the one `kubectl apply` would print.

use std::fmt;

/// One broken rule: where it is and why it is wrong.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ValidationError {
    /// Dotted path to the field, e.g. `spec.gateway.probe.period` or `spec.selector.matchExpressions[0].key`.
    pub path: String,
    /// Human-readable reason, starting lower-case.
    pub reason: String,
}

impl ValidationError {
    /// Builds an error for `path`.
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// Every broken rule of one object, in field order. Never empty when returned as an error.
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ValidationErrors {
    /// Records a broken rule.
    pub fn push(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.0.push(ValidationError::new(path, reason));
    }

    /// Records the result of a single-field rule.
    pub fn check(&mut self, path: &str, result: Result<(), String>) {
        if let Err(reason) = result {
            self.push(path, reason);
        }
    }

    /// Adds errors of a nested object, prefixing their paths.
    pub fn extend_prefixed(&mut self, prefix: &str, nested: ValidationErrors) {
        for e in nested.0 {
            self.0.push(ValidationError::new(
                format!("{prefix}.{}", e.path),
                e.reason,
            ));
        }
    }

    /// `Ok(())` when nothing was recorded.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }

    /// True when no rule was broken.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Longest DNS-1123 label, the limit for object names and label-name parts.
pub const DNS1123_LABEL_MAX: usize = 63;
/// Longest DNS-1123 subdomain, the limit for label-key prefixes.
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;

/// A lowercase RFC 1123 label: what Kubernetes requires of Service and Namespace names.
pub fn dns1123_label(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > DNS1123_LABEL_MAX {
        return Err(format!(
            "must be no more than {DNS1123_LABEL_MAX} characters (got {})",
            value.len()
        ));
    }
    let bytes = value.as_bytes();
    let ok_inner = bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    let ok_ends = is_lower_alnum(bytes[0]) && is_lower_alnum(bytes[bytes.len() - 1]);
    if !ok_inner || !ok_ends {
        return Err(format!(
            "{value:?} is not a lowercase RFC 1123 label: it must consist of lower case alphanumeric \
             characters or '-', and must start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

/// A lowercase RFC 1123 subdomain: dot-separated labels, 253 characters at most.
pub fn dns1123_subdomain(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        return Err(format!(
            "must be no more than {DNS1123_SUBDOMAIN_MAX} characters (got {})",
            value.len()
        ));
    }
    let bytes = value.as_bytes();
    let ok_inner = bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'.');
    let ok_ends = is_lower_alnum(bytes[0]) && is_lower_alnum(bytes[bytes.len() - 1]);
    let ok_parts = value
        .split('.')
        .all(|p| !p.is_empty() && dns1123_label(p).is_ok());
    if !ok_inner || !ok_ends || !ok_parts {
        return Err(format!(
            "{value:?} is not a lowercase RFC 1123 subdomain: it must consist of lower case \
             alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn is_qualified_name_part(value: &str) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A label (or annotation) key: `[prefix/]name`, prefix a DNS subdomain, name 63 chars of
/// `[A-Za-z0-9_.-]` starting and ending alphanumeric.
pub fn label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        dns1123_subdomain(prefix).map_err(|e| format!("prefix of key {key:?}: {e}"))?;
    }
    if name.is_empty() {
        return Err(format!("name part of key {key:?} must not be empty"));
    }
    if name.len() > DNS1123_LABEL_MAX {
        return Err(format!(
            "name part of key {key:?} must be no more than {DNS1123_LABEL_MAX} characters"
        ));
    }
    if !is_qualified_name_part(name) {
        return Err(format!(
            "name part of key {key:?} must consist of alphanumeric characters, '-', '_' or '.', \
             and must start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

/// A label value: empty, or 63 chars of `[A-Za-z0-9_.-]` starting and ending alphanumeric.
pub fn label_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    if value.len() > DNS1123_LABEL_MAX {
        return Err(format!(
            "label value {value:?} must be no more than {DNS1123_LABEL_MAX} characters"
        ));
    }
    if !is_qualified_name_part(value) {
        return Err(format!(
            "label value {value:?} must consist of alphanumeric characters, '-', '_' or '.', and \
             must start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

/// A TCP/UDP port number.
pub fn port(value: u32) -> Result<(), String> {
    if (1..=65535).contains(&value) {
        Ok(())
    } else {
        Err(format!("must be between 1 and 65535 (got {value})"))
    }
}

/// An absolute `http://` or `https://` URL with a host.
pub fn http_url(value: &str) -> Result<(), String> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or_else(|| format!("{value:?} must be an http:// or https:// URL"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("{value:?} has no host"));
    }
    if value.chars().any(char::is_whitespace) {
        return Err(format!("{value:?} must not contain whitespace"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns1123_label_rejects_uppercase_with_kubernetes_wording() {
        assert_eq!(
            dns1123_label("East").unwrap_err(),
            "\"East\" is not a lowercase RFC 1123 label: it must consist of lower case alphanumeric \
             characters or '-', and must start and end with an alphanumeric character"
        );
    }

    #[test]
    fn dns1123_label_rejects_64_characters() {
        let name = "a".repeat(64);
        assert_eq!(
            dns1123_label(&name).unwrap_err(),
            "must be no more than 63 characters (got 64)"
        );
        assert!(dns1123_label(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn dns1123_label_rejects_empty_and_edge_dashes() {
        assert_eq!(dns1123_label("").unwrap_err(), "must not be empty");
        assert!(dns1123_label("-east").is_err());
        assert!(dns1123_label("east-").is_err());
        assert!(dns1123_label("east-1").is_ok());
    }

    #[test]
    fn subdomain_requires_valid_labels_between_dots() {
        assert!(dns1123_subdomain("mirror.linkerd.io").is_ok());
        assert!(dns1123_subdomain("mirror..io").is_err());
        assert_eq!(
            dns1123_subdomain(&"a".repeat(254)).unwrap_err(),
            "must be no more than 253 characters (got 254)"
        );
    }

    #[test]
    fn label_key_checks_prefix_and_name() {
        assert!(label_key("mirror.linkerd.io/exported").is_ok());
        assert!(label_key("app").is_ok());
        assert_eq!(
            label_key("Bad_Prefix/x").unwrap_err(),
            "prefix of key \"Bad_Prefix/x\": \"Bad_Prefix\" is not a lowercase RFC 1123 subdomain: it \
             must consist of lower case alphanumeric characters, '-' or '.', and must start and end \
             with an alphanumeric character"
        );
        assert_eq!(
            label_key("a/").unwrap_err(),
            "name part of key \"a/\" must not be empty"
        );
        assert_eq!(
            label_key("-app").unwrap_err(),
            "name part of key \"-app\" must consist of alphanumeric characters, '-', '_' or '.', and \
             must start and end with an alphanumeric character"
        );
    }

    #[test]
    fn label_value_allows_empty_and_rejects_spaces() {
        assert!(label_value("").is_ok());
        assert!(label_value("remote-discovery").is_ok());
        assert_eq!(
            label_value("a b").unwrap_err(),
            "label value \"a b\" must consist of alphanumeric characters, '-', '_' or '.', and must \
             start and end with an alphanumeric character"
        );
        assert_eq!(
            label_value(&"v".repeat(64)).unwrap_err(),
            format!(
                "label value {:?} must be no more than 63 characters",
                "v".repeat(64)
            )
        );
    }

    #[test]
    fn port_range_is_1_to_65535() {
        assert_eq!(port(0).unwrap_err(), "must be between 1 and 65535 (got 0)");
        assert_eq!(
            port(65536).unwrap_err(),
            "must be between 1 and 65535 (got 65536)"
        );
        assert!(port(1).is_ok() && port(65535).is_ok());
    }

    #[test]
    fn http_url_requires_scheme_and_host() {
        assert!(http_url("https://127.0.0.1:6443").is_ok());
        assert_eq!(
            http_url("ftp://x").unwrap_err(),
            "\"ftp://x\" must be an http:// or https:// URL"
        );
        assert_eq!(
            http_url("https://").unwrap_err(),
            "\"https://\" has no host"
        );
    }

    #[test]
    fn errors_display_path_and_reason() {
        let mut errs = ValidationErrors::default();
        errs.push("spec.port", "bad");
        errs.push("metadata.name", "worse");
        assert_eq!(errs.to_string(), "spec.port: bad; metadata.name: worse");
    }
}
