//! A YAML node tree that remembers where every node and key came from.
//!
//! serde-saphyr does the YAML work (syntax, aliases with budgets, duplicate keys, multi-document
//! streams); this module only keeps its [`serde_saphyr::Spanned`] positions on every node so a
//! validation error found later (`spec.gateway.port`) can be reported at `file:line:col`.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub col: u32,
}

impl Pos {
    fn from_location(loc: serde_saphyr::Location) -> Self {
        Self {
            line: u32::try_from(loc.line()).unwrap_or(u32::MAX).max(1),
            col: u32::try_from(loc.column()).unwrap_or(u32::MAX).max(1),
        }
    }
}

/// A node and its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts.
    pub pos: Pos,
    /// Its value.
    pub value: Value,
}

/// A mapping key and its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// Where the key starts.
    pub pos: Pos,
    /// The key, stringified when it was a number or boolean.
    pub name: String,
}

/// A YAML value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or empty.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A negative integer.
    Int(i64),
    /// A non-negative integer.
    UInt(u64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order.
    Map(Vec<(Key, Node)>),
}

impl Node {
    /// The value under `key` when this is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The key and value under `key` when this is a mapping.
    pub fn entry(&self, key: &str) -> Option<(&Key, &Node)> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.name == key)
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    /// The string value, if a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A short noun for error messages.
    pub fn type_name(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) | Value::UInt(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a sequence",
            Value::Map(_) => "a mapping",
        }
    }

    /// Converts to JSON, the form the core types deserialize from.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::UInt(u) => J::from(*u),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// The position of the node at a field path such as `spec.gateway.addresses[0]` or
    /// `spec.selector.matchLabels[mirror.linkerd.io/exported]`, falling back to the deepest
    /// ancestor that exists (and to this node).
    pub fn locate(&self, path: &str) -> Pos {
        let mut node = self;
        for seg in split_path(path) {
            let next = match (&node.value, seg.parse::<usize>()) {
                (Value::Seq(items), Ok(i)) => items.get(i),
                _ => node.get(&seg),
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node.pos
    }

    /// The position of the key `key` inside the node at `path` (for "unknown field" errors).
    pub fn locate_key(&self, path: &str, key: &str) -> Pos {
        let mut node = self;
        for seg in split_path(path) {
            let next = match (&node.value, seg.parse::<usize>()) {
                (Value::Seq(items), Ok(i)) => items.get(i),
                _ => node.get(&seg),
            };
            match next {
                Some(n) => node = n,
                None => return node.pos,
            }
        }
        node.entry(key).map_or(node.pos, |(k, _)| k.pos)
    }

    /// Every string scalar with its position, and every mapping key, depth first.
    pub fn walk<'a>(&'a self, f: &mut impl FnMut(Option<&'a Key>, &'a Node)) {
        match &self.value {
            Value::Seq(items) => {
                for i in items {
                    f(None, i);
                    i.walk(f);
                }
            }
            Value::Map(entries) => {
                for (k, v) in entries {
                    f(Some(k), v);
                    v.walk(f);
                }
            }
            _ => {}
        }
    }
}

/// Splits `a.b[c.d][0].e` into `a`, `b`, `c.d`, `0`, `e`.
fn split_path(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            '[' => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                let mut inner = String::new();
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    inner.push(c);
                }
                out.push(inner);
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A YAML syntax or structure error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// Where, when known (1:1 otherwise).
    pub pos: Pos,
    /// The parser's message, without source snippets.
    pub message: String,
}

/// Parses every document of a YAML stream; empty documents are skipped.
pub fn parse_documents(input: &str) -> Result<Vec<Node>, SyntaxError> {
    serde_saphyr::from_multiple::<Node>(input).map_err(|e| {
        let pos = e
            .location()
            .filter(|l| l.line() > 0)
            .map(Pos::from_location)
            .unwrap_or(Pos { line: 1, col: 1 });
        let message = e.without_snippet().to_string();
        // The rendered message may still carry "at line X column Y"; keep only the first line.
        let message = message.lines().next().unwrap_or("invalid YAML").trim();
        SyntaxError {
            pos,
            message: message.to_string(),
        }
    })
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(d)?;
        Ok(Node {
            pos: Pos::from_location(spanned.referenced),
            value: spanned.value,
        })
    }
}

struct KeyName(String);

impl<'de> Deserialize<'de> for KeyName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyName;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar mapping key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyName, E> {
                Ok(KeyName(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<KeyName, E> {
                Ok(KeyName(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyName, E> {
                Ok(KeyName(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyName, E> {
                Ok(KeyName(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyName, E> {
                Ok(KeyName(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyName, E> {
                Ok(KeyName(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyName, E> {
                Ok(KeyName("null".into()))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Value, E> {
                Ok(Value::Null)
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Value, D2::Error> {
                Value::deserialize(d)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
                Ok(Value::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
                Ok(if v < 0 {
                    Value::Int(v)
                } else {
                    Value::UInt(v.unsigned_abs())
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
                Ok(Value::UInt(v))
            }
            fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
                Ok(i64::try_from(v)
                    .map(Value::Int)
                    .unwrap_or(Value::Str(v.to_string())))
            }
            fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
                Ok(u64::try_from(v)
                    .map(Value::UInt)
                    .unwrap_or(Value::Str(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
                Ok(Value::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
                Ok(Value::Str(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
                Ok(Value::Str(v))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
                Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Node>()? {
                    items.push(item);
                }
                Ok(Value::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
                let mut entries: Vec<(Key, Node)> = Vec::new();
                while let Some(key) = map.next_key::<Spanned<KeyName>>()? {
                    let value = map.next_value::<Node>()?;
                    let key = Key {
                        pos: Pos::from_location(key.referenced),
                        name: key.value.0,
                    };
                    if entries.iter().any(|(k, _)| k.name == key.name) {
                        return Err(de::Error::custom(format!(
                            "duplicate mapping key {:?}",
                            key.name
                        )));
                    }
                    entries.push((key, value));
                }
                Ok(Value::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_nested_fields_are_kept() {
        let docs = parse_documents(
            "a: 1\nspec:\n  gateway:\n    port: 70000\n  labels:\n    x.io/y: z\n---\n# empty\n---\nb: [1, 2]\n",
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[0].locate("spec.gateway.port"),
            Pos { line: 4, col: 11 }
        );
        assert_eq!(
            docs[0].locate("spec.labels[x.io/y]"),
            Pos { line: 6, col: 13 }
        );
        assert_eq!(
            docs[0].locate_key("spec.gateway", "port"),
            Pos { line: 4, col: 5 }
        );
        // Missing leaf: the deepest existing ancestor.
        assert_eq!(
            docs[0].locate("spec.gateway.nope"),
            docs[0].locate("spec.gateway")
        );
        assert_eq!(docs[1].locate("b[1]"), Pos { line: 10, col: 8 });
        assert_eq!(docs[1].to_json(), serde_json::json!({"b": [1, 2]}));
    }

    #[test]
    fn syntax_error_has_a_position() {
        let err = parse_documents("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(err.pos.line >= 2, "{err:?}");
        assert!(!err.message.is_empty());
    }

    #[test]
    fn duplicate_keys_are_errors() {
        let err = parse_documents("a: 1\na: 2\n").unwrap_err();
        assert!(err.message.contains("duplicate"), "{err:?}");
        assert_eq!(err.pos.line, 2, "{err:?}");
    }

    #[test]
    fn split_path_keeps_dots_inside_brackets() {
        assert_eq!(
            split_path("spec.selector.matchLabels[a.b/c][0].d"),
            ["spec", "selector", "matchLabels", "a.b/c", "0", "d"]
        );
    }
}
