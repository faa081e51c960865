-- 0003 federation: the state of every federated service (`<svc>-federated`) per source cluster
-- and of each of its members, for the API. Written by the federation reconciler.

CREATE TABLE federated_services (
    id                bigserial   PRIMARY KEY,
    source_cluster    object_name NOT NULL REFERENCES clusters(name) ON DELETE CASCADE,
    namespace         text        NOT NULL,
    service           text        NOT NULL,
    local_name        text        NOT NULL,
    state             text        NOT NULL CHECK (state IN ('Federated', 'Conflict', 'MissingNamespace', 'Rejected', 'Error')),
    message           text        NOT NULL DEFAULT '',
    remote_discovery  text        NOT NULL DEFAULT '',
    local_discovery   boolean     NOT NULL DEFAULT false,
    last_transition   timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT federated_services_one_per_name UNIQUE (source_cluster, namespace, service)
);
COMMENT ON TABLE federated_services IS 'One row per <service>-federated Service linkplane manages (or is blocked from managing) in a source cluster.';
COMMENT ON COLUMN federated_services.service IS 'Base name shared by the members ("namespace sameness"); the Service is local_name.';
COMMENT ON COLUMN federated_services.remote_discovery IS 'The multicluster.linkerd.io/remote-discovery annotation as written: svc@cluster,...';
COMMENT ON COLUMN federated_services.state IS 'Conflict covers both a user-owned <svc>-federated and conflicting member ports (message says which).';

CREATE TABLE federated_members (
    federated_id    bigint      NOT NULL REFERENCES federated_services(id) ON DELETE CASCADE,
    member_cluster  object_name NOT NULL,
    is_local        boolean     NOT NULL DEFAULT false,
    state           text        NOT NULL CHECK (state IN ('Member', 'Rejected', 'Unreachable')),
    message         text        NOT NULL DEFAULT '',
    member_since    timestamptz,
    PRIMARY KEY (federated_id, member_cluster)
);
COMMENT ON TABLE federated_members IS 'Members of a federated service: Member, Rejected (e.g. headless) or Unreachable (cluster down, still listed).';
COMMENT ON COLUMN federated_members.member_since IS 'The member Service''s creationTimestamp; the oldest member is the metadata source of truth.';

CREATE FUNCTION notify_federation_state() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('linkplane_events', json_build_object(
            'kind', 'federated', 'cluster', OLD.source_cluster, 'namespace', OLD.namespace,
            'name', OLD.service, 'state', 'Deleted')::text);
    ELSIF TG_OP = 'INSERT' OR NEW.state IS DISTINCT FROM OLD.state
          OR NEW.remote_discovery IS DISTINCT FROM OLD.remote_discovery
          OR NEW.local_discovery IS DISTINCT FROM OLD.local_discovery THEN
        PERFORM pg_notify('linkplane_events', json_build_object(
            'kind', 'federated', 'cluster', NEW.source_cluster, 'namespace', NEW.namespace,
            'name', NEW.service, 'state', NEW.state, 'message', NEW.message)::text);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER federated_services_events AFTER INSERT OR UPDATE OR DELETE ON federated_services
    FOR EACH ROW EXECUTE FUNCTION notify_federation_state();
