-- 0014 Kubernetes Multi-Cluster Services state (issue 20): every ServiceExport linkplane
-- handles, with the KEP-1645 conditions it wrote, and every ServiceImport it wrote into a
-- consumer, for the API, the CLI and the dashboard. Written by the MCS reconciler of the
-- replica holding the cluster's lease (exports: the exporting cluster's; imports: the
-- consumer's), each cluster's rows replaced as a whole after a pass.

CREATE TABLE mcs_exports (
    id               bigserial   PRIMARY KEY,
    cluster          object_name NOT NULL REFERENCES clusters(name) ON DELETE CASCADE,
    namespace        text        NOT NULL,
    service          text        NOT NULL,
    state            text        NOT NULL CHECK (state IN ('Exported', 'Conflict', 'Pending', 'Invalid')),
    conflict         boolean     NOT NULL DEFAULT false,
    conditions       jsonb       NOT NULL DEFAULT '[]',
    links            text[]      NOT NULL DEFAULT '{}',
    imported_by      text[]      NOT NULL DEFAULT '{}',
    exported_at      timestamptz,
    last_transition  timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mcs_exports_one_per_name UNIQUE (cluster, namespace, service)
);
COMMENT ON TABLE mcs_exports IS 'One row per ServiceExport in a cluster some MCS link targets.';
COMMENT ON COLUMN mcs_exports.state IS 'One word for the three conditions: Invalid (Valid=False), else Conflict (Conflict=True), else Exported (Ready=True), else Pending.';
COMMENT ON COLUMN mcs_exports.conflict IS 'The Conflict condition is True (kept apart from state so conflicts can be listed whatever else holds).';
COMMENT ON COLUMN mcs_exports.conditions IS 'The KEP-1645 conditions as written to the ServiceExport status: [{type, status, reason, message, lastTransitionTime}].';
COMMENT ON COLUMN mcs_exports.links IS 'MCS links (target = this cluster) whose planner selected the export, sorted.';
COMMENT ON COLUMN mcs_exports.imported_by IS 'Consumer clusters holding a ServiceImport of it, sorted.';
COMMENT ON COLUMN mcs_exports.exported_at IS 'The ServiceExport''s creationTimestamp: the oldest export wins a conflict.';
CREATE INDEX mcs_exports_conflicts ON mcs_exports (id) WHERE conflict;

CREATE TABLE mcs_imports (
    id                bigserial   PRIMARY KEY,
    cluster           object_name NOT NULL REFERENCES clusters(name) ON DELETE CASCADE,
    namespace         text        NOT NULL,
    service           text        NOT NULL,
    type              text        NOT NULL CHECK (type IN ('ClusterSetIP', 'Headless')),
    ports             jsonb       NOT NULL DEFAULT '[]',
    session_affinity  text        NOT NULL DEFAULT 'None',
    source_clusters   text[]      NOT NULL DEFAULT '{}',
    endpoint_slices   integer     NOT NULL DEFAULT 0 CHECK (endpoint_slices >= 0),
    ready_endpoints   integer     NOT NULL DEFAULT 0 CHECK (ready_endpoints >= 0),
    state             text        NOT NULL CHECK (state IN ('Imported', 'Conflict', 'Error')),
    message           text        NOT NULL DEFAULT '',
    last_transition   timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mcs_imports_one_per_name UNIQUE (cluster, namespace, service)
);
COMMENT ON TABLE mcs_imports IS 'One row per ServiceImport linkplane writes into a consumer cluster (namespace sameness: one per namespace/name over every exporting cluster).';
COMMENT ON COLUMN mcs_imports.ports IS 'ServiceImport.spec.ports as written: [{name, protocol, port}].';
COMMENT ON COLUMN mcs_imports.source_clusters IS 'Exporting clusters (ServiceImport.status.clusters), sorted.';
COMMENT ON COLUMN mcs_imports.ready_endpoints IS 'Ready endpoints over every EndpointSlice of the import.';
