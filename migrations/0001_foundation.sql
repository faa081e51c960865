-- 0001 foundation: declarative objects (clusters, links, export policies, Git sources), sync
-- history, the runtime state the API shows (mirrors, gateway health, reconciler status), and the
-- LISTEN/NOTIFY channels the reconcilers and the API subscribe to instead of polling.

-- Who owns a declarative object: 'api', or 'git:<source name>' for objects a Git source declares.
-- Git prunes only what it owns; the API may not edit what Git owns.
CREATE DOMAIN owner_ref AS text CHECK (VALUE = 'api' OR VALUE ~ '^git:[a-z0-9]([-a-z0-9]*[a-z0-9])?$');
CREATE DOMAIN object_name AS text CHECK (VALUE ~ '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' AND length(VALUE) <= 63);

CREATE TABLE clusters (
    name        object_name PRIMARY KEY,
    spec        jsonb       NOT NULL,
    owner       owner_ref   NOT NULL DEFAULT 'api',
    generation  bigint      NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE clusters IS 'Linked Kubernetes clusters; spec is core::ClusterSpec as JSON (credentials by reference only).';
COMMENT ON COLUMN clusters.generation IS 'Bumped on every spec change, so reconcilers can tell a restart is needed.';

CREATE TABLE links (
    name            object_name PRIMARY KEY,
    source_cluster  object_name NOT NULL REFERENCES clusters(name) ON DELETE RESTRICT,
    target_cluster  object_name NOT NULL REFERENCES clusters(name) ON DELETE RESTRICT,
    spec            jsonb       NOT NULL,
    paused          boolean     NOT NULL DEFAULT false,
    owner           owner_ref   NOT NULL DEFAULT 'api',
    generation      bigint      NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT links_source_differs_from_target CHECK (source_cluster <> target_cluster),
    -- Two links with the same pair would fight over the same mirrors (a Linkerd defect).
    CONSTRAINT links_one_per_cluster_pair UNIQUE (source_cluster, target_cluster)
);
COMMENT ON TABLE links IS 'Directed links: source_cluster receives mirrors of target_cluster''s exported services; spec is core::LinkSpec.';
COMMENT ON COLUMN links.paused IS 'Operator pause: reconcilers keep existing mirrors but stop changing them.';
CREATE INDEX links_target_idx ON links (target_cluster);

CREATE TABLE export_policies (
    name        object_name PRIMARY KEY,
    spec        jsonb       NOT NULL,
    owner       owner_ref   NOT NULL DEFAULT 'api',
    generation  bigint      NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE export_policies IS 'Allow-list policies over exports; spec is core::ExportPolicySpec.';

CREATE TABLE git_sources (
    name                     object_name PRIMARY KEY,
    spec                     jsonb       NOT NULL,
    pinned_revision          text,
    status                   text        NOT NULL DEFAULT 'Unknown'
                             CHECK (status IN ('Unknown', 'Synced', 'OutOfSync', 'Failed')),
    last_applied_revision    text,
    last_attempted_revision  text,
    last_error               text,
    last_synced_at           timestamptz,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE git_sources IS 'Git repositories declaring clusters, links and policies, with their sync status.';
COMMENT ON COLUMN git_sources.pinned_revision IS 'When set, sync holds this commit instead of following spec.ref.';

CREATE TABLE sync_history (
    id           bigserial   PRIMARY KEY,
    source       object_name NOT NULL REFERENCES git_sources(name) ON DELETE CASCADE,
    revision     text        NOT NULL,
    author       text        NOT NULL DEFAULT '',
    message      text        NOT NULL DEFAULT '',
    trigger      text        NOT NULL CHECK (trigger IN ('startup', 'poll', 'webhook', 'manual', 'pin', 'self-heal')),
    result       text        NOT NULL CHECK (result IN ('Applied', 'Unchanged', 'Rejected', 'Failed')),
    started_at   timestamptz NOT NULL,
    duration_ms  bigint      NOT NULL CHECK (duration_ms >= 0),
    created      integer     NOT NULL DEFAULT 0,
    updated      integer     NOT NULL DEFAULT 0,
    deleted      integer     NOT NULL DEFAULT 0,
    counts       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    errors       jsonb       NOT NULL DEFAULT '[]'::jsonb
);
COMMENT ON TABLE sync_history IS 'One row per sync attempt; trimmed to the newest 50 per source by the store.';
COMMENT ON COLUMN sync_history.counts IS 'Per kind: {"Link": {"created": 1, "updated": 0, "deleted": 2}, ...}.';
COMMENT ON COLUMN sync_history.errors IS 'Array of "path/file.yaml:line:col: message" strings for rejected revisions.';
CREATE INDEX sync_history_source_idx ON sync_history (source, id DESC);

CREATE TABLE mirrors (
    id                bigserial   PRIMARY KEY,
    link              object_name NOT NULL REFERENCES links(name) ON DELETE CASCADE,
    source_cluster    object_name NOT NULL,
    target_cluster    object_name NOT NULL,
    remote_namespace  text        NOT NULL,
    remote_name       text        NOT NULL,
    local_name        text        NOT NULL,
    mode              text        NOT NULL CHECK (mode IN ('gateway', 'remote-discovery')),
    headless          boolean     NOT NULL DEFAULT false,
    state             text        NOT NULL
                      CHECK (state IN ('Mirrored', 'Conflict', 'MissingNamespace', 'PolicyDenied', 'Error')),
    message           text        NOT NULL DEFAULT '',
    last_transition   timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT mirrors_one_per_remote_service UNIQUE (link, remote_namespace, remote_name)
);
COMMENT ON TABLE mirrors IS 'One row per exported service a link selects: where its mirror is and whether it is healthy. Nothing is silent.';
COMMENT ON COLUMN mirrors.last_transition IS 'Last change of state (not of message), unlike Linkerd''s last-write time.';
CREATE INDEX mirrors_source_idx ON mirrors (source_cluster, remote_namespace);
CREATE INDEX mirrors_target_idx ON mirrors (target_cluster);
CREATE INDEX mirrors_state_idx ON mirrors (state) WHERE state <> 'Mirrored';

CREATE TABLE gateway_health (
    link                  object_name PRIMARY KEY REFERENCES links(name) ON DELETE CASCADE,
    alive                 boolean     NOT NULL DEFAULT true,
    latency_ms            double precision,
    consecutive_failures  integer     NOT NULL DEFAULT 0,
    last_error            text,
    last_probe_at         timestamptz,
    last_transition       timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE gateway_health IS 'Latest gateway probe result per link (the target''s gateway as seen for that link).';

CREATE TABLE reconciler_status (
    cluster        object_name PRIMARY KEY REFERENCES clusters(name) ON DELETE CASCADE,
    state          text        NOT NULL CHECK (state IN ('Starting', 'Running', 'Degraded', 'Failed', 'Stopped')),
    message        text        NOT NULL DEFAULT '',
    watches_synced boolean     NOT NULL DEFAULT false,
    last_sync_at   timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE reconciler_status IS 'Per-cluster reconciler health: did its watches list once, is its API server reachable.';
COMMENT ON COLUMN reconciler_status.watches_synced IS 'True once the initial list of every watch completed; /readyz waits for this or Failed.';

-- Change feed for reconcilers: fires on any change of declarative objects.
CREATE FUNCTION notify_config_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('linkplane_config', json_build_object(
        'table', TG_TABLE_NAME,
        'op', TG_OP,
        'name', COALESCE(NEW.name, OLD.name)
    )::text);
    RETURN NULL;
END $$;

CREATE TRIGGER clusters_notify AFTER INSERT OR UPDATE OR DELETE ON clusters
    FOR EACH ROW EXECUTE FUNCTION notify_config_change();
CREATE TRIGGER links_notify AFTER INSERT OR UPDATE OR DELETE ON links
    FOR EACH ROW EXECUTE FUNCTION notify_config_change();
CREATE TRIGGER export_policies_notify AFTER INSERT OR UPDATE OR DELETE ON export_policies
    FOR EACH ROW EXECUTE FUNCTION notify_config_change();
CREATE TRIGGER git_sources_notify AFTER INSERT OR UPDATE OR DELETE ON git_sources
    FOR EACH ROW EXECUTE FUNCTION notify_config_change();

-- Event feed for the API's subscriptions: state transitions only, never heartbeats.
CREATE FUNCTION notify_mirror_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('linkplane_events', json_build_object(
            'kind', 'mirror', 'link', OLD.link, 'namespace', OLD.remote_namespace,
            'name', OLD.remote_name, 'state', 'Deleted')::text);
    ELSIF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state THEN
        PERFORM pg_notify('linkplane_events', json_build_object(
            'kind', 'mirror', 'link', NEW.link, 'namespace', NEW.remote_namespace,
            'name', NEW.remote_name, 'state', NEW.state, 'message', NEW.message)::text);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER mirrors_events AFTER INSERT OR UPDATE OR DELETE ON mirrors
    FOR EACH ROW EXECUTE FUNCTION notify_mirror_state();

CREATE FUNCTION notify_gateway_liveness() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.alive IS DISTINCT FROM OLD.alive THEN
        PERFORM pg_notify('linkplane_events', json_build_object(
            'kind', 'gateway', 'link', NEW.link, 'alive', NEW.alive)::text);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER gateway_health_events AFTER INSERT OR UPDATE ON gateway_health
    FOR EACH ROW EXECUTE FUNCTION notify_gateway_liveness();

CREATE FUNCTION notify_sync_result() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('linkplane_events', json_build_object(
        'kind', 'sync', 'source', NEW.source, 'revision', NEW.revision, 'result', NEW.result)::text);
    RETURN NULL;
END $$;
CREATE TRIGGER sync_history_events AFTER INSERT ON sync_history
    FOR EACH ROW EXECUTE FUNCTION notify_sync_result();
