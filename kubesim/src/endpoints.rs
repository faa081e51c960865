//! Endpoints as the API server stores them. The Endpoints registry strategy canonicalizes
//! `subsets` on every write (kubernetes `pkg/registry/core/endpoint/strategy.go`,
//! `Canonicalize` → `pkg/api/endpoints/util.go` `RepackSubsets`):
//!
//! - every (address, port) pair is expanded, addresses de-duplicated by IP + `targetRef.uid`
//!   (the first one seen is kept whole), a not-ready pairing wins over a ready one;
//! - ports offered by the same set of addresses (with the same readiness) share one subset;
//!   subsets without addresses or without ports vanish;
//! - `SortSubsets`: addresses sorted by IP bytes then `targetRef.uid` (none first), ports and
//!   subsets sorted by the MD5 of their `spew` dump (`%#v` with types, as
//!   `k8s.io/apimachinery/pkg/util/dump.ForHash` prints the internal `core` types).
//!
//! So a client that writes `subsets` in its own order reads back upstream's order, and a
//! controller comparing naively sees a difference exactly where it would on a real cluster.

use std::collections::BTreeMap;

use md5::{Digest, Md5};
use serde_json::{Value, json};

/// IP and target UID: addresses are de-duplicated by it.
type AddressKey = (String, String);

/// A port with the JSON it was written as.
type PortJson = (Port, Value);

/// One address as the internal `core.EndpointAddress` holds it (field order matters: it is
/// the order `spew` prints).
#[derive(Debug, Clone)]
struct Address {
    json: Value,
    ip: String,
    hostname: String,
    node_name: Option<String>,
    target_ref: Option<[String; 7]>,
}

impl Address {
    fn parse(v: &Value) -> Self {
        let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let target_ref = v.get("targetRef").filter(|t| t.is_object()).map(|t| {
            // core.ObjectReference: Kind, Namespace, Name, UID, APIVersion, ResourceVersion,
            // FieldPath.
            [
                s(t, "kind"),
                s(t, "namespace"),
                s(t, "name"),
                s(t, "uid"),
                s(t, "apiVersion"),
                s(t, "resourceVersion"),
                s(t, "fieldPath"),
            ]
        });
        Self {
            json: v.clone(),
            ip: s(v, "ip"),
            hostname: s(v, "hostname"),
            node_name: v
                .get("nodeName")
                .and_then(Value::as_str)
                .map(str::to_string),
            target_ref,
        }
    }

    /// The de-duplication key: IP and target UID (`addressKey`).
    fn key(&self) -> AddressKey {
        (
            self.ip.clone(),
            self.target_ref
                .as_ref()
                .map(|t| t[3].clone())
                .unwrap_or_default(),
        )
    }

    /// `LessEndpointAddress`: IP bytes, then target UID with "no target" first.
    fn less(&self, other: &Self) -> bool {
        match self.ip.as_bytes().cmp(other.ip.as_bytes()) {
            std::cmp::Ordering::Less => true,
            std::cmp::Ordering::Greater => false,
            std::cmp::Ordering::Equal => match (&self.target_ref, &other.target_ref) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(a), Some(b)) => a[3] < b[3],
            },
        }
    }

    /// The element dump inside a `[]core.EndpointAddress` (types of fields, not of the element).
    fn spew(&self) -> String {
        let node = match &self.node_name {
            Some(n) => format!("(*string){n}"),
            None => "(*string)<nil>".into(),
        };
        let target = match &self.target_ref {
            Some([kind, ns, name, uid, api_version, rv, field_path]) => format!(
                "(*core.ObjectReference){{Kind:(string){kind} Namespace:(string){ns} Name:(string){name} UID:(types.UID){uid} APIVersion:(string){api_version} ResourceVersion:(string){rv} FieldPath:(string){field_path}}}"
            ),
            None => "(*core.ObjectReference)<nil>".into(),
        };
        format!(
            "{{IP:(string){} Hostname:(string){} NodeName:{node} TargetRef:{target}}}",
            self.ip, self.hostname
        )
    }
}

/// One port as the internal `core.EndpointPort` holds it; equal ports are one map key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Port {
    name: String,
    port: i64,
    protocol: String,
    app_protocol: Option<String>,
}

impl Port {
    fn parse(v: &Value) -> Self {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        Self {
            name: s("name"),
            port: v.get("port").and_then(Value::as_i64).unwrap_or(0),
            protocol: s("protocol"),
            app_protocol: v
                .get("appProtocol")
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    }

    fn spew_fields(&self) -> String {
        let app = match &self.app_protocol {
            Some(a) => format!("(*string){a}"),
            None => "(*string)<nil>".into(),
        };
        format!(
            "{{Name:(string){} Port:(int32){} Protocol:(core.Protocol){} AppProtocol:{app}}}",
            self.name, self.port, self.protocol
        )
    }

    /// The top-level dump `portsByHash` hashes (the value's type first).
    fn hash(&self) -> [u8; 16] {
        md5(&format!("(core.EndpointPort){}", self.spew_fields()))
    }

    fn to_json(&self, original: &Value) -> Value {
        let mut out = original.clone();
        out["protocol"] = json!(self.protocol);
        out
    }
}

fn md5(s: &str) -> [u8; 16] {
    Md5::digest(s.as_bytes()).into()
}

struct Subset {
    ready: Vec<Address>,
    not_ready: Vec<Address>,
    ports: Vec<(Port, Value)>,
}

impl Subset {
    fn spew(&self) -> String {
        let addrs = |a: &[Address]| {
            if a.is_empty() {
                // `append` to a nil slice never happened: the field stays nil.
                "<nil>".to_string()
            } else {
                let items: Vec<String> = a.iter().map(Address::spew).collect();
                format!("[{}]", items.join(" "))
            }
        };
        let ports: Vec<String> = self.ports.iter().map(|(p, _)| p.spew_fields()).collect();
        format!(
            "(core.EndpointSubset){{Addresses:([]core.EndpointAddress){} NotReadyAddresses:([]core.EndpointAddress){} Ports:([]core.EndpointPort)[{}]}}",
            addrs(&self.ready),
            addrs(&self.not_ready),
            ports.join(" ")
        )
    }

    fn to_json(&self) -> Value {
        let mut out = serde_json::Map::new();
        if !self.ready.is_empty() {
            out.insert(
                "addresses".into(),
                Value::Array(self.ready.iter().map(|a| a.json.clone()).collect()),
            );
        }
        if !self.not_ready.is_empty() {
            out.insert(
                "notReadyAddresses".into(),
                Value::Array(self.not_ready.iter().map(|a| a.json.clone()).collect()),
            );
        }
        out.insert(
            "ports".into(),
            Value::Array(self.ports.iter().map(|(p, j)| p.to_json(j)).collect()),
        );
        Value::Object(out)
    }
}

fn sort_addresses(a: &mut [Address]) {
    a.sort_by(|x, y| {
        if x.less(y) {
            std::cmp::Ordering::Less
        } else if y.less(x) {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    });
}

/// Defaults endpoint ports (`SetDefaults_EndpointPort`: protocol TCP) and repacks `subsets`
/// into the canonical layout. An empty result removes `subsets` (it is `omitempty`).
pub(crate) fn canonicalize(obj: &mut Value) {
    let Some(Value::Array(subsets)) = obj.get("subsets") else {
        if let Value::Object(m) = obj {
            m.remove("subsets");
        }
        return;
    };
    // Addresses by key, first seen kept whole; per port, each address's readiness.
    let mut all: BTreeMap<AddressKey, Address> = BTreeMap::new();
    let mut by_port: BTreeMap<Port, (Value, BTreeMap<AddressKey, bool>)> = BTreeMap::new();
    for s in subsets {
        let list = |k: &str| -> Vec<Value> {
            s.get(k)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let (ready, not_ready, ports) =
            (list("addresses"), list("notReadyAddresses"), list("ports"));
        for pv in &ports {
            let mut port = Port::parse(pv);
            if port.protocol.is_empty() {
                port.protocol = "TCP".into();
            }
            for (addrs, is_ready) in [(&ready, true), (&not_ready, false)] {
                for av in addrs {
                    let addr = Address::parse(av);
                    let key = addr.key();
                    all.entry(key.clone()).or_insert(addr);
                    let entry = by_port
                        .entry(port.clone())
                        .or_insert_with(|| (pv.clone(), BTreeMap::new()));
                    // Not ready always trumps ready.
                    let slot = entry.1.entry(key).or_insert(is_ready);
                    *slot = *slot && is_ready;
                }
            }
        }
    }
    // Ports grouped by the exact set of (address, readiness) that offers them.
    let mut groups: BTreeMap<Vec<(AddressKey, bool)>, Vec<PortJson>> = BTreeMap::new();
    for (port, (json, addrs)) in by_port {
        let set: Vec<(AddressKey, bool)> = addrs.into_iter().collect();
        groups.entry(set).or_default().push((port, json));
    }
    let mut out: Vec<Subset> = groups
        .into_iter()
        .map(|(set, mut ports)| {
            let mut ready = Vec::new();
            let mut not_ready = Vec::new();
            for (key, is_ready) in set {
                if let Some(a) = all.get(&key) {
                    if is_ready {
                        ready.push(a.clone());
                    } else {
                        not_ready.push(a.clone());
                    }
                }
            }
            sort_addresses(&mut ready);
            sort_addresses(&mut not_ready);
            ports.sort_by_key(|(p, _)| p.hash());
            Subset {
                ready,
                not_ready,
                ports,
            }
        })
        .collect();
    out.sort_by_cached_key(|s| md5(&s.spew()));
    if let Value::Object(m) = obj {
        if out.is_empty() {
            m.remove("subsets");
        } else {
            m.insert(
                "subsets".into(),
                Value::Array(out.iter().map(Subset::to_json).collect()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ips(subset: &Value, list: &str) -> Vec<String> {
        subset[list]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| a["ip"].as_str().unwrap().to_string())
            .collect()
    }

    fn ports(subset: &Value) -> Vec<i64> {
        subset["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["port"].as_i64().unwrap())
            .collect()
    }

    /// kubernetes `pkg/api/endpoints/util_test.go` `TestPackSubsets` ("four sets, three ips,
    /// three ports, jumbled"): subsets merge by the address set offering each port.
    #[test]
    fn subsets_merge_by_the_addresses_that_offer_each_port() {
        let mut ep = json!({"subsets": [
            {"addresses": [{"ip": "1.2.3.4"}], "ports": [{"port": 111}]},
            {"addresses": [{"ip": "1.2.3.5"}], "ports": [{"port": 222}]},
            {"addresses": [{"ip": "1.2.3.6"}], "ports": [{"port": 111}]},
            {"addresses": [{"ip": "1.2.3.5"}], "ports": [{"port": 333}]},
        ]});
        canonicalize(&mut ep);
        let subsets = ep["subsets"].as_array().unwrap();
        assert_eq!(subsets.len(), 2);
        let by_ips: BTreeMap<Vec<String>, Vec<i64>> = subsets
            .iter()
            .map(|s| (ips(s, "addresses"), ports(s)))
            .collect();
        assert_eq!(
            by_ips[&vec!["1.2.3.4".to_string(), "1.2.3.6".to_string()]],
            vec![111]
        );
        let mut p = by_ips[&vec!["1.2.3.5".to_string()]].clone();
        p.sort();
        assert_eq!(p, vec![222, 333]);
        assert!(subsets.iter().all(|s| s["ports"][0]["protocol"] == "TCP"));
    }

    /// `RepackSubsets`: duplicates collapse, not-ready wins, empty subsets vanish.
    #[test]
    fn duplicates_collapse_and_not_ready_wins() {
        let mut ep = json!({"subsets": [
            {"addresses": [{"ip": "10.0.0.2"}, {"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
             "notReadyAddresses": [{"ip": "10.0.0.1"}],
             "ports": [{"port": 80}, {"port": 80}]},
            {"addresses": [], "ports": [{"port": 9}]},
        ]});
        canonicalize(&mut ep);
        assert_eq!(
            ep["subsets"],
            json!([{"addresses": [{"ip": "10.0.0.2"}], "notReadyAddresses": [{"ip": "10.0.0.1"}],
                    "ports": [{"port": 80, "protocol": "TCP"}]}])
        );
        let mut empty = json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}]}]});
        canonicalize(&mut empty);
        assert!(empty.get("subsets").is_none(), "{empty}");
    }

    /// `SortSubsets`: addresses by IP bytes (so "10.0.0.10" < "10.0.0.9"), then target UID;
    /// ports by the MD5 of their spew dump, which is independent of the written order.
    #[test]
    fn order_is_canonical_whatever_the_written_order() {
        let written = |order: &[usize]| {
            let ports = [
                json!({"name": "http", "port": 80}),
                json!({"name": "admin", "port": 9990}),
                json!({"name": "grpc", "port": 8080, "appProtocol": "h2c"}),
            ];
            let addrs = [
                json!({"ip": "10.0.0.9"}),
                json!({"ip": "10.0.0.10", "targetRef": {"kind": "Pod", "name": "b", "uid": "u2"}}),
                json!({"ip": "10.0.0.10", "targetRef": {"kind": "Pod", "name": "a", "uid": "u1"}}),
            ];
            let mut ep = json!({"subsets": [{
                "addresses": order.iter().map(|i| addrs[*i].clone()).collect::<Vec<_>>(),
                "ports": order.iter().map(|i| ports[*i].clone()).collect::<Vec<_>>(),
            }]});
            canonicalize(&mut ep);
            ep
        };
        let a = written(&[0, 1, 2]);
        let b = written(&[2, 0, 1]);
        assert_eq!(a, b);
        let subset = &a["subsets"][0];
        let uids: Vec<&str> = subset["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                a.pointer("/targetRef/uid")
                    .and_then(Value::as_str)
                    .unwrap_or("-")
            })
            .collect();
        assert_eq!(uids, vec!["u1", "u2", "-"]);
        let mut hashed: Vec<(String, i64)> = subset["ports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let port = Port::parse(p);
                (hex(&port.hash()), port.port)
            })
            .collect();
        let listed: Vec<i64> = hashed.iter().map(|(_, p)| *p).collect();
        hashed.sort();
        assert_eq!(listed, hashed.iter().map(|(_, p)| *p).collect::<Vec<_>>());
    }

    /// The dump the hash is taken of, as go-spew (`%#v`, `DisableMethods`) prints the
    /// internal type: pinning it keeps the order identical to the API server's.
    #[test]
    fn the_hashed_dump_is_spews() {
        let p = Port::parse(&json!({"name": "http", "port": 80, "protocol": "TCP"}));
        assert_eq!(
            format!("(core.EndpointPort){}", p.spew_fields()),
            "(core.EndpointPort){Name:(string)http Port:(int32)80 Protocol:(core.Protocol)TCP AppProtocol:(*string)<nil>}"
        );
        let a = Address::parse(&json!({"ip": "10.0.0.1", "nodeName": "n1"}));
        assert_eq!(
            a.spew(),
            "{IP:(string)10.0.0.1 Hostname:(string) NodeName:(*string)n1 TargetRef:(*core.ObjectReference)<nil>}"
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
