-- 0011 The API's audit log, and subscription events that name their cluster (issue 16).

-- Every mutation the API ran or refused for an authenticated caller: who (the token and its
-- name at the time), with which role, when, which mutation with which arguments (secrets
-- replaced by "<redacted>"), and how it ended (OK or the error code).
CREATE TABLE audit_log (
    id          bigserial   PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    token_id    bigint      REFERENCES api_tokens(id) ON DELETE SET NULL,
    token_name  text        NOT NULL,
    role        text        NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    mutation    text        NOT NULL CHECK (length(mutation) BETWEEN 1 AND 128),
    arguments   jsonb       NOT NULL DEFAULT '{}'::jsonb,
    result      text        NOT NULL CHECK (length(result) BETWEEN 1 AND 64)
);
COMMENT ON TABLE audit_log IS 'API mutations by authenticated callers (auditLog query), newest last; secrets never stored.';
COMMENT ON COLUMN audit_log.token_name IS 'The token''s name when the mutation ran ("in-process" for callers without a token).';
COMMENT ON COLUMN audit_log.result IS '"OK", or the extensions.code of the error the mutation answered (FORBIDDEN, NOT_FOUND, …).';
CREATE INDEX audit_log_at_idx ON audit_log (at);

-- Mirror events name the cluster holding the mirror.
CREATE OR REPLACE FUNCTION notify_mirror_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('linkplane_events', json_build_object(
            'kind', 'mirror', 'cluster', OLD.source_cluster, 'link', OLD.link,
            'namespace', OLD.remote_namespace, 'name', OLD.remote_name, 'state', 'Deleted')::text);
    ELSIF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state THEN
        PERFORM pg_notify('linkplane_events', json_build_object(
            'kind', 'mirror', 'cluster', NEW.source_cluster, 'link', NEW.link,
            'namespace', NEW.remote_namespace, 'name', NEW.remote_name, 'state', NEW.state,
            'message', NEW.message)::text);
    END IF;
    RETURN NULL;
END $$;

-- Gateway events name the cluster whose gateway it is (the link's target).
CREATE OR REPLACE FUNCTION notify_gateway_liveness() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.alive IS DISTINCT FROM OLD.alive THEN
        PERFORM pg_notify('linkplane_events', json_build_object(
            'kind', 'gateway', 'cluster', (SELECT target_cluster FROM links WHERE name = NEW.link),
            'link', NEW.link, 'alive', NEW.alive, 'message', NEW.last_error)::text);
    END IF;
    RETURN NULL;
END $$;

-- Cluster health: a reconciler changing state (Starting, Running, Degraded, Failed, Stopped).
CREATE FUNCTION notify_reconciler_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state THEN
        PERFORM pg_notify('linkplane_events', json_build_object(
            'kind', 'cluster', 'cluster', NEW.cluster, 'state', NEW.state,
            'message', NEW.message)::text);
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION notify_reconciler_state() IS 'linkplane_events "cluster" event: a reconciler state transition (never a heartbeat).';
CREATE TRIGGER reconciler_status_events AFTER INSERT OR UPDATE ON reconciler_status
    FOR EACH ROW EXECUTE FUNCTION notify_reconciler_state();
