-- GitOps engine state (linkplane-gitops): what each source's applied revision declared, the
-- drift found against it, and webhook delivery dedupe. Never edit once applied; add a new file.

-- The desired objects of the revision last applied from each source. Drift detection compares
-- these with the live tables in SQL (jsonb equality), and self-heal re-applies them without
-- going back to Git. Rewritten whole, in the same transaction as the apply.
CREATE TABLE gitops_objects (
    source    object_name NOT NULL REFERENCES git_sources(name) ON DELETE CASCADE,
    kind      text        NOT NULL CHECK (kind IN ('Cluster', 'Link', 'ExportPolicy')),
    name      object_name NOT NULL,
    spec      jsonb       NOT NULL,
    revision  text        NOT NULL,
    file      text        NOT NULL,
    PRIMARY KEY (source, kind, name)
);
COMMENT ON TABLE gitops_objects IS 'Per Git source: every object its last applied revision declared, with the spec as declared (the drift baseline).';
COMMENT ON COLUMN gitops_objects.file IS 'Manifest path (relative to the source path) and position, "file.yaml:line:col".';

-- Objects that differ from what their source's applied revision declared. Replaced on every
-- drift check; empty when the source is in sync. The API shows it as the per-object diff.
CREATE TABLE gitops_drift (
    source       object_name NOT NULL REFERENCES git_sources(name) ON DELETE CASCADE,
    kind         text        NOT NULL CHECK (kind IN ('Cluster', 'Link', 'ExportPolicy')),
    name         object_name NOT NULL,
    change       text        NOT NULL CHECK (change IN ('Modified', 'Deleted', 'OwnerChanged')),
    diff         jsonb       NOT NULL DEFAULT '[]'::jsonb,
    detected_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, kind, name)
);
COMMENT ON TABLE gitops_drift IS 'Objects changed outside Git since their source''s last apply; makes the source OutOfSync.';
COMMENT ON COLUMN gitops_drift.diff IS 'Array of {"path": "spec.gateway.port", "desired": <json>, "actual": <json>} per differing field.';

-- Webhook deliveries already acted upon (GitHub X-GitHub-Delivery, GitLab X-Gitlab-Event-UUID),
-- so provider retries do not queue duplicate syncs. Trimmed to a day by the webhook handler.
CREATE TABLE gitops_webhook_deliveries (
    provider     text        NOT NULL CHECK (provider IN ('github', 'gitlab')),
    delivery_id  text        NOT NULL CHECK (length(delivery_id) BETWEEN 1 AND 200),
    received_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, delivery_id)
);
COMMENT ON TABLE gitops_webhook_deliveries IS 'Webhook delivery ids seen in the last day, for dedupe of provider retries.';
CREATE INDEX gitops_webhook_deliveries_age_idx ON gitops_webhook_deliveries (received_at);
