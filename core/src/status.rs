//! The status vocabulary: every closed set of states, triggers, results, kinds and roles that the
//! store writes into a column, the GraphQL API shows as an enum and the reconcilers and the GitOps
//! engine produce. Each set is declared once here, with its column spelling; `as_str`, `FromStr`,
//! `Display`, serde (as the column spelling) and `ALL` come from one macro, so no crate spells a state by hand or compares one as
//! a string.

/// A column value that names no member of its set (a newer server's, or a corrupt row).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a {set}")]
pub struct UnknownValue {
    /// The set, e.g. `MirrorState`.
    pub set: &'static str,
    /// The value read.
    pub value: String,
}

/// Declares a closed set: the enum, its column spellings, `as_str`, `parse`, `FromStr`,
/// `Display` and `ALL`.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $column:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every member, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The column (and wire) spelling.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $column,)+
                }
            }

            /// The member a column value names, if any.
            pub fn parse(value: &str) -> Option<Self> {
                value.parse().ok()
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::status::UnknownValue;

            fn from_str(value: &str) -> Result<Self, $crate::status::UnknownValue> {
                match value {
                    $($column => Ok($name::$variant),)+
                    _ => Err($crate::status::UnknownValue {
                        set: stringify!($name),
                        value: value.to_string(),
                    }),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::status::UnknownValue;

            /// For `#[sqlx(try_from = "String")]` columns (each has a CHECK listing the set).
            fn try_from(value: String) -> Result<Self, $crate::status::UnknownValue> {
                value.parse()
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let value = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                value.parse().map_err(::serde::de::Error::custom)
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use vocabulary;

vocabulary! {
    /// Why a mirror is (or is not) in place. Nothing is silent: every selected service has a
    /// state (`mirrors.state`).
    pub enum MirrorState {
        /// The mirror exists and matches the remote service.
        Mirrored = "Mirrored",
        /// A local object we do not own blocks the mirror.
        Conflict = "Conflict",
        /// The local namespace does not exist (and the link does not create namespaces).
        MissingNamespace = "MissingNamespace",
        /// An export policy forbids this export.
        PolicyDenied = "PolicyDenied",
        /// Writing failed; the message says why.
        Error = "Error",
    }
}

vocabulary! {
    /// A reconciler's lifecycle state (`reconciler_status.state`).
    pub enum ReconcilerState {
        /// Connecting and listing.
        Starting = "Starting",
        /// Watches synced, events flowing.
        Running = "Running",
        /// Running with errors (e.g. some writes failing).
        Degraded = "Degraded",
        /// Cannot reach or authenticate to the API server; retrying with backoff.
        Failed = "Failed",
        /// Stopped because the cluster has no links.
        Stopped = "Stopped",
    }
}

vocabulary! {
    /// State of a federated service (`federated_services.state`).
    pub enum FederatedState {
        /// `<svc>-federated` exists and lists every member.
        Federated = "Federated",
        /// Blocked by a user-owned `<svc>-federated`, or members disagree on ports (message says
        /// which).
        Conflict = "Conflict",
        /// The namespace does not exist in the source cluster.
        MissingNamespace = "MissingNamespace",
        /// Members exist but none may join (e.g. all headless); nothing is written.
        Rejected = "Rejected",
        /// Writing failed.
        Error = "Error",
    }
}

vocabulary! {
    /// State of one member of a federated service (`federated_members.state`).
    pub enum MemberState {
        /// Listed in the discovery annotations.
        Member = "Member",
        /// Not admitted (e.g. a headless Service); the message says why.
        Rejected = "Rejected",
        /// Its cluster is unreachable; it stays listed until the cluster answers again.
        Unreachable = "Unreachable",
    }
}

vocabulary! {
    /// `ServiceImport.spec.type` (KEP-1645), also `mcs_imports.type`.
    pub enum McsImportType {
        /// A cluster-set virtual IP.
        ClusterSetIp = "ClusterSetIP",
        /// No virtual IP: DNS returns the endpoints.
        Headless = "Headless",
    }
}

vocabulary! {
    /// A Kubernetes condition's status (`metav1.ConditionStatus`).
    pub enum ConditionStatus {
        /// The condition holds.
        True = "True",
        /// It does not.
        False = "False",
        /// Not known yet.
        Unknown = "Unknown",
    }
}

vocabulary! {
    /// A KEP-1645 `ServiceExport` condition type (`mcs_exports.conditions[].type`).
    pub enum McsConditionType {
        /// The export is valid: the Service exists and may be exported.
        Valid = "Valid",
        /// The export is imported into every MCS consumer linked to its cluster.
        Ready = "Ready",
        /// The export conflicts with another cluster's export of the service.
        Conflict = "Conflict",
    }
}

vocabulary! {
    /// One word for a `ServiceExport`'s three conditions (`mcs_exports.state`), so that lists
    /// can be filtered and counted by it. Precedence, first that applies: `Invalid`,
    /// `Conflict`, `Exported`, `Pending`.
    pub enum McsExportState {
        /// `Valid=True`, `Ready=True`, `Conflict=False`.
        Exported = "Exported",
        /// `Valid=True`, `Conflict=True`: imported with the oldest export's definition.
        Conflict = "Conflict",
        /// `Valid=True`, `Ready=False`: not imported into every consumer (or into none).
        Pending = "Pending",
        /// `Valid=False`: no Service of that name, or one that cannot be exported.
        Invalid = "Invalid",
    }
}

vocabulary! {
    /// State of a `ServiceImport` in a consumer cluster (`mcs_imports.state`).
    pub enum McsImportState {
        /// The ServiceImport and its EndpointSlices are written and current.
        Imported = "Imported",
        /// Written, but the exports disagree (type or ports); the oldest export's shape is used.
        Conflict = "Conflict",
        /// Writing the ServiceImport or one of its EndpointSlices failed; the message says why.
        Error = "Error",
    }
}

vocabulary! {
    /// A Git source's sync status (`git_sources.status`), Argo CD's vocabulary.
    pub enum SyncStatus {
        /// Never synced.
        Unknown = "Unknown",
        /// The database matches the applied revision.
        Synced = "Synced",
        /// A newer revision exists, or objects drifted from Git.
        OutOfSync = "OutOfSync",
        /// The last attempt was rejected or failed; the last good revision stays applied.
        Failed = "Failed",
        /// The newest revision would prune past the source's limits: held, not applied, until an
        /// operator approves it; the last good revision stays applied.
        PruneHeld = "PruneHeld",
    }
}

vocabulary! {
    /// Why a sync runs (`sync_history.trigger`).
    pub enum Trigger {
        /// The server started.
        Startup = "startup",
        /// The poll interval elapsed.
        Poll = "poll",
        /// A verified push webhook arrived.
        Webhook = "webhook",
        /// Someone asked (API or CLI).
        Manual = "manual",
        /// The source's pinned revision was set or cleared.
        Pin = "pin",
        /// Drift was reverted.
        SelfHeal = "self-heal",
    }
}

vocabulary! {
    /// What a sync did (`sync_history.result`; `Skipped` is never recorded).
    pub enum SyncResult {
        /// The revision was applied (something was written).
        Applied = "Applied",
        /// The revision was already applied; drift was checked.
        Unchanged = "Unchanged",
        /// The revision was invalid; nothing was written.
        Rejected = "Rejected",
        /// Git or the database failed; nothing was written.
        Failed = "Failed",
        /// Not attempted: the commit was rejected before and has not changed, or the source is
        /// suspended.
        Skipped = "Skipped",
        /// The revision would prune past the source's limits: held until approved; nothing was
        /// written.
        Held = "Held",
    }
}

vocabulary! {
    /// The kinds of object a Git source declares (`applied_objects.kind`, `drift.kind`, the keys
    /// of `sync_history.counts`). Declared in the order of their spellings, so maps keyed by
    /// kind keep the order they had with string keys; it is also the order a revision is applied
    /// in (clusters before the links that use them).
    pub enum ObjectKind {
        /// A `Cluster`.
        Cluster = "Cluster",
        /// An `ExportPolicy`.
        ExportPolicy = "ExportPolicy",
        /// A `Link`.
        Link = "Link",
    }
}

vocabulary! {
    /// How an object drifted from Git (`drift.change`).
    pub enum DriftChange {
        /// Its spec differs from what Git declares.
        Modified = "Modified",
        /// It was deleted outside Git.
        Deleted = "Deleted",
        /// Another owner took it over.
        OwnerChanged = "OwnerChanged",
    }
}

vocabulary! {
    /// How a revision changes one object (`linkplane diff --revision`, `GitSource.plan`).
    pub enum PlanChange {
        /// Declared, not in the database yet.
        Create = "Create",
        /// Owned by the source, spec differs.
        Update = "Update",
        /// Owned by the source, no longer declared (pruned).
        Delete = "Delete",
    }
}

vocabulary! {
    /// What an API token may do (`api_tokens.role`, the CLI's `--role`). Ordered: a higher role
    /// includes every lower one.
    pub enum Role {
        /// Read-only queries and subscriptions.
        Viewer = "viewer",
        /// Viewer plus operational mutations (sync, pause, credentials).
        Operator = "operator",
        /// Operator plus token management.
        Admin = "admin",
    }
}

vocabulary! {
    /// Where a pair's remote-discovery credentials stand (`remote_credentials.state`).
    pub enum RemoteCredentialState {
        /// Not written yet.
        Pending = "Pending",
        /// The Secret holds a valid token.
        Issued = "Issued",
        /// The source cluster has no Linkerd namespace; written as soon as it appears.
        NamespaceMissing = "NamespaceMissing",
        /// The last attempt failed (see the message); a token already written stays valid until
        /// it expires.
        Error = "Error",
    }
}

vocabulary! {
    /// Who declares a Git source (`git_sources.declared_by`): the server's `--git-*` flags own
    /// theirs (read-only through the API), the API the others.
    pub enum DeclaredBy {
        /// Added through the API.
        Api = "api",
        /// Declared by the server's `--git-*` flags.
        Flags = "flags",
    }
}

vocabulary! {
    /// What a `linkplane_events` payload's `state` says besides the states of its kind: the row
    /// is gone (written by the delete triggers of migrations 0001, 0003 and 0011).
    pub enum RowEvent {
        /// The mirror or federated service row was deleted.
        Deleted = "Deleted",
    }
}

#[cfg(test)]
mod tests {
    use std::{fmt, str::FromStr};

    use super::*;

    fn round_trips<T>(all: &[T])
    where
        T: Copy + PartialEq + fmt::Debug + fmt::Display + FromStr<Err = UnknownValue>,
    {
        for &v in all {
            assert_eq!(v.to_string().parse::<T>(), Ok(v), "{v:?}");
        }
    }

    #[test]
    fn every_member_round_trips_through_its_column_spelling() {
        round_trips(MirrorState::ALL);
        round_trips(ReconcilerState::ALL);
        round_trips(FederatedState::ALL);
        round_trips(MemberState::ALL);
        round_trips(SyncStatus::ALL);
        round_trips(Trigger::ALL);
        round_trips(SyncResult::ALL);
        round_trips(ObjectKind::ALL);
        round_trips(DriftChange::ALL);
        round_trips(PlanChange::ALL);
        round_trips(Role::ALL);
        round_trips(McsImportType::ALL);
        round_trips(ConditionStatus::ALL);
        round_trips(McsConditionType::ALL);
        round_trips(McsExportState::ALL);
        round_trips(McsImportState::ALL);
        round_trips(RemoteCredentialState::ALL);
        round_trips(DeclaredBy::ALL);
        round_trips(RowEvent::ALL);
    }

    #[test]
    fn column_spellings_are_the_stored_ones() {
        // Rows written by earlier servers must still parse: these spellings are in the database.
        assert_eq!(Trigger::SelfHeal.as_str(), "self-heal");
        assert_eq!(MirrorState::MissingNamespace.as_str(), "MissingNamespace");
        assert_eq!(SyncStatus::PruneHeld.as_str(), "PruneHeld");
        assert_eq!(Role::Admin.as_str(), "admin");
        // KEP-1645 spells the type `ClusterSetIP`, not the Rust variant's `ClusterSetIp`.
        assert_eq!(McsImportType::ClusterSetIp.as_str(), "ClusterSetIP");
    }

    #[test]
    fn unknown_values_are_refused_with_the_set_named() {
        let err = "Sleeping".parse::<ReconcilerState>().unwrap_err();
        assert_eq!(err.set, "ReconcilerState");
        assert_eq!(err.to_string(), "\"Sleeping\" is not a ReconcilerState");
        assert_eq!(Role::parse("root"), None);
        assert_eq!(
            MirrorState::parse("mirrored"),
            None,
            "spellings are case-sensitive"
        );
    }

    #[test]
    fn roles_are_ordered_by_privilege() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
    }
}
