//! Kubernetes label selectors, with both matching rules linkplane needs.
//!
//! Link selectors follow Linkerd: an absent or empty selector selects **nothing**
//! ([`LabelSelector::selects`]), so a forgotten selector never exports a whole cluster (Linkerd
//! issue #11429). Export-policy filters follow Kubernetes: an empty selector matches everything
//! ([`LabelSelector::matches`]).

use std::collections::BTreeMap;

use crate::validation::{ValidationErrors, label_key, label_value};

/// `metav1.LabelSelector`: `matchLabels` AND every `matchExpressions` requirement.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    /// Exact key=value pairs, all required.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements, all required.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<Requirement>,
}

/// One set-based requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Requirement {
    /// Label key the requirement is about.
    pub key: String,
    /// How `values` are compared.
    pub operator: Operator,
    /// Values for `In`/`NotIn`; must be empty for `Exists`/`DoesNotExist`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// The operators Linkerd's Link CRD schema allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Operator {
    /// Label present with one of the values.
    In,
    /// Label absent, or present with none of the values.
    NotIn,
    /// Label present, any value.
    Exists,
    /// Label absent.
    DoesNotExist,
}

impl Operator {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "In",
            Operator::NotIn => "NotIn",
            Operator::Exists => "Exists",
            Operator::DoesNotExist => "DoesNotExist",
        }
    }
}

impl TryFrom<String> for Operator {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.as_str() {
            "In" => Ok(Operator::In),
            "NotIn" => Ok(Operator::NotIn),
            "Exists" => Ok(Operator::Exists),
            "DoesNotExist" => Ok(Operator::DoesNotExist),
            other => Err(format!(
                "unsupported operator {other:?}: must be one of In, NotIn, Exists, DoesNotExist"
            )),
        }
    }
}

impl From<Operator> for String {
    fn from(value: Operator) -> Self {
        value.as_str().to_string()
    }
}

impl LabelSelector {
    /// A selector requiring one `key=value` label, the shape of Linkerd's default selectors.
    pub fn label(key: &str, value: &str) -> Self {
        Self {
            match_labels: BTreeMap::from([(key.to_string(), value.to_string())]),
            match_expressions: vec![],
        }
    }

    /// True when the selector has no requirement at all.
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    /// Kubernetes semantics: every requirement holds (an empty selector matches everything).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }

    /// Linkerd semantics: like [`matches`](Self::matches) but an empty selector selects nothing.
    pub fn selects(&self, labels: &BTreeMap<String, String>) -> bool {
        !self.is_empty() && self.matches(labels)
    }

    /// Checks keys, values and operator/value consistency; paths are relative to the selector.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut errs = ValidationErrors::default();
        for (k, v) in &self.match_labels {
            errs.check(&format!("matchLabels[{k}]"), label_key(k));
            errs.check(&format!("matchLabels[{k}]"), label_value(v));
        }
        for (i, r) in self.match_expressions.iter().enumerate() {
            let path = format!("matchExpressions[{i}]");
            errs.check(&format!("{path}.key"), label_key(&r.key));
            match r.operator {
                Operator::In | Operator::NotIn if r.values.is_empty() => errs.push(
                    format!("{path}.values"),
                    format!("must be non-empty when operator is {}", r.operator.as_str()),
                ),
                Operator::Exists | Operator::DoesNotExist if !r.values.is_empty() => errs.push(
                    format!("{path}.values"),
                    format!("must be empty when operator is {}", r.operator.as_str()),
                ),
                _ => {}
            }
            for (j, v) in r.values.iter().enumerate() {
                errs.check(&format!("{path}.values[{j}]"), label_value(v));
            }
        }
        errs.into_result()
    }
}

impl Requirement {
    /// Evaluates the requirement against a label set.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            Operator::In => value.is_some_and(|v| self.values.contains(v)),
            Operator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
        }
    }
}

/// Optional-selector helper with Linkerd semantics: `None` selects nothing.
pub fn selects(selector: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    selector.is_some_and(|s| s.selects(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, operator: Operator, values: &[&str]) -> LabelSelector {
        LabelSelector {
            match_labels: BTreeMap::new(),
            match_expressions: vec![Requirement {
                key: key.into(),
                operator,
                values: values.iter().map(|v| v.to_string()).collect(),
            }],
        }
    }

    #[test]
    fn empty_selector_selects_nothing_but_matches_everything() {
        let empty = LabelSelector::default();
        let l = labels(&[("app", "x")]);
        assert!(!empty.selects(&l));
        assert!(empty.matches(&l));
        assert!(!selects(None, &l));
    }

    #[test]
    fn match_labels_require_exact_values() {
        let s = LabelSelector::label("mirror.linkerd.io/exported", "true");
        assert!(s.selects(&labels(&[("mirror.linkerd.io/exported", "true")])));
        assert!(!s.selects(&labels(&[(
            "mirror.linkerd.io/exported",
            "remote-discovery"
        )])));
        assert!(!s.selects(&labels(&[])));
    }

    #[test]
    fn set_based_operators() {
        let l = labels(&[("tier", "web")]);
        assert!(expr("tier", Operator::In, &["web", "api"]).selects(&l));
        assert!(!expr("tier", Operator::NotIn, &["web"]).selects(&l));
        assert!(expr("env", Operator::NotIn, &["prod"]).selects(&l));
        assert!(expr("tier", Operator::Exists, &[]).selects(&l));
        assert!(!expr("tier", Operator::DoesNotExist, &[]).selects(&l));
        assert!(expr("env", Operator::DoesNotExist, &[]).selects(&l));
    }

    #[test]
    fn unknown_operator_is_rejected_when_parsed() {
        let err = serde_json::from_str::<LabelSelector>(
            r#"{"matchExpressions":[{"key":"a","operator":"Gt","values":["1"]}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(
                "unsupported operator \"Gt\": must be one of In, NotIn, Exists, DoesNotExist"
            ),
            "{err}"
        );
    }

    #[test]
    fn validation_reports_each_broken_rule_with_its_path() {
        let mut s = expr("tier", Operator::In, &[]);
        s.match_expressions.push(Requirement {
            key: "x".into(),
            operator: Operator::Exists,
            values: vec!["v".into()],
        });
        s.match_labels.insert("bad key".into(), "ok".into());
        let errs = s.validate().unwrap_err();
        let rendered: Vec<String> = errs.0.iter().map(ToString::to_string).collect();
        assert_eq!(
            rendered,
            vec![
                "matchLabels[bad key]: name part of key \"bad key\" must consist of alphanumeric \
                 characters, '-', '_' or '.', and must start and end with an alphanumeric character"
                    .to_string(),
                "matchExpressions[0].values: must be non-empty when operator is In".to_string(),
                "matchExpressions[1].values: must be empty when operator is Exists".to_string(),
            ]
        );
    }
}
