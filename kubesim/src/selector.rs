//! Label and field selectors in their query-string syntax (`app=web,tier in (a,b),!canary`).

use crate::names::{label_value, qualified_name};

/// One label requirement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed `labelSelector`: all requirements must hold. Empty selects everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct LabelSelector(pub Vec<Requirement>);

impl LabelSelector {
    /// Parses the Kubernetes label-selector syntax; the error explains what is wrong.
    pub fn parse(input: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        for part in split_top_level(input)? {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            reqs.push(parse_requirement(part)?);
        }
        Ok(Self(reqs))
    }

    /// Whether a label set (looked up by key) satisfies every requirement.
    pub fn matches<'a>(&self, get: impl Fn(&str) -> Option<&'a str>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Eq(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEq(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }
}

fn split_top_level(input: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("unexpected ')' in selector {input:?}"));
                }
            }
            ',' if depth == 0 => {
                parts.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!("unbalanced parentheses in selector {input:?}"));
    }
    parts.push(&input[start..]);
    Ok(parts)
}

fn key(k: &str) -> Result<String, String> {
    let k = k.trim();
    let errs = qualified_name(k);
    if !errs.is_empty() {
        return Err(format!("invalid label key {k:?}: {}", errs.join("; ")));
    }
    Ok(k.to_string())
}

fn value(v: &str) -> Result<String, String> {
    let v = v.trim();
    let errs = label_value(v);
    if !errs.is_empty() {
        return Err(format!("invalid label value {v:?}: {}", errs.join("; ")));
    }
    Ok(v.to_string())
}

fn parse_requirement(part: &str) -> Result<Requirement, String> {
    if let Some(k) = part.strip_prefix('!') {
        return Ok(Requirement::NotExists(key(k)?));
    }
    if let Some((k, v)) = part.split_once("!=") {
        return Ok(Requirement::NotEq(key(k)?, value(v)?));
    }
    if let Some((k, v)) = part.split_once("==") {
        return Ok(Requirement::Eq(key(k)?, value(v)?));
    }
    if let Some((k, v)) = part.split_once('=') {
        return Ok(Requirement::Eq(key(k)?, value(v)?));
    }
    if let Some(open) = part.find('(') {
        let head = part[..open].trim();
        let Some(body) = part[open + 1..].strip_suffix(')') else {
            return Err(format!("expected ')' at the end of {part:?}"));
        };
        let (k, op) = head
            .rsplit_once(char::is_whitespace)
            .ok_or_else(|| format!("expected 'in' or 'notin' in {part:?}"))?;
        let values = body.split(',').map(value).collect::<Result<Vec<_>, _>>()?;
        return match op {
            "in" => Ok(Requirement::In(key(k)?, values)),
            "notin" => Ok(Requirement::NotIn(key(k)?, values)),
            other => Err(format!("unknown operator {other:?} in {part:?}")),
        };
    }
    if part.contains(char::is_whitespace) {
        return Err(format!("unable to parse requirement {part:?}"));
    }
    Ok(Requirement::Exists(key(part)?))
}

/// A parsed `fieldSelector` over `metadata.name` and `metadata.namespace`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct FieldSelector(Vec<(FieldKey, bool, String)>);

#[derive(Debug, Clone, Copy, PartialEq)]
enum FieldKey {
    Name,
    Namespace,
}

impl FieldSelector {
    /// Parses `metadata.name=x,metadata.namespace!=y`; other fields are rejected as Kubernetes
    /// rejects unsupported field labels.
    pub fn parse(input: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for part in input.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (k, eq, v) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(format!("invalid field selector requirement {part:?}"));
            };
            let key = match k.trim() {
                "metadata.name" => FieldKey::Name,
                "metadata.namespace" => FieldKey::Namespace,
                other => return Err(format!("field label not supported: {other}")),
            };
            out.push((key, eq, v.trim().to_string()));
        }
        Ok(Self(out))
    }

    /// Whether an object with this namespace and name is selected.
    pub fn matches(&self, namespace: &str, name: &str) -> bool {
        self.0.iter().all(|(k, eq, v)| {
            let actual = match k {
                FieldKey::Name => name,
                FieldKey::Namespace => namespace,
            };
            (actual == v) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<&'a str> {
        move |k| pairs.iter().find(|(a, _)| *a == k).map(|(_, v)| *v)
    }

    #[test]
    fn parses_every_operator() {
        let s = LabelSelector::parse("a=1,b==2,c!=3,d in (x, y),e notin (z),f,!g").unwrap();
        assert_eq!(
            s.0,
            vec![
                Requirement::Eq("a".into(), "1".into()),
                Requirement::Eq("b".into(), "2".into()),
                Requirement::NotEq("c".into(), "3".into()),
                Requirement::In("d".into(), vec!["x".into(), "y".into()]),
                Requirement::NotIn("e".into(), vec!["z".into()]),
                Requirement::Exists("f".into()),
                Requirement::NotExists("g".into()),
            ]
        );
    }

    #[test]
    fn matching_follows_kubernetes_semantics() {
        let s = LabelSelector::parse("app=web,tier notin (db),!canary").unwrap();
        assert!(s.matches(labels(&[("app", "web")])));
        assert!(s.matches(labels(&[("app", "web"), ("tier", "fe")])));
        assert!(!s.matches(labels(&[("app", "web"), ("tier", "db")])));
        assert!(!s.matches(labels(&[("app", "web"), ("canary", "")])));
        assert!(!s.matches(labels(&[("app", "api")])));
        let ne = LabelSelector::parse("app!=web").unwrap();
        assert!(
            ne.matches(labels(&[])),
            "!= selects objects without the label"
        );
        let inn = LabelSelector::parse("app in (a,b)").unwrap();
        assert!(!inn.matches(labels(&[])));
        assert!(inn.matches(labels(&[("app", "b")])));
        assert!(LabelSelector::parse("").unwrap().matches(labels(&[])));
    }

    #[test]
    fn rejects_malformed_selectors() {
        for bad in ["a in (b", "a)", "a b", "a=b c", "a foo (x)", "-bad-=x"] {
            assert!(
                LabelSelector::parse(bad).is_err(),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn field_selector_supports_name_and_namespace_only() {
        let f = FieldSelector::parse("metadata.name=web,metadata.namespace!=kube-system").unwrap();
        assert!(f.matches("default", "web"));
        assert!(!f.matches("kube-system", "web"));
        assert!(!f.matches("default", "api"));
        assert!(FieldSelector::parse("spec.type=ClusterIP").is_err());
    }
}
