-- 0013 Replicas and cluster leases (issue 19): several linkplane servers share one database;
-- each cluster's watch set, writer and gateway prober runs on exactly one of them at a time.

-- Every running server process. A replica heartbeats this row; one whose heartbeat is older
-- than its lease duration counts as dead and is left out of the assignment (its row stays
-- until it shuts down gracefully or another replica prunes it).
CREATE TABLE replicas (
    id            text        PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
    name          text        NOT NULL CHECK (length(name) BETWEEN 1 AND 253),
    started_at    timestamptz NOT NULL DEFAULT now(),
    heartbeat_at  timestamptz NOT NULL DEFAULT now(),
    lease_ms      bigint      NOT NULL DEFAULT 10000 CHECK (lease_ms > 0)
);
COMMENT ON TABLE replicas IS 'Running linkplane server processes (one row per process), with their last heartbeat.';
COMMENT ON COLUMN replicas.id IS 'Unique per process start (hostname plus a random suffix): a restarted pod is a new replica.';
COMMENT ON COLUMN replicas.name IS 'Host or pod name, for people.';
COMMENT ON COLUMN replicas.lease_ms IS 'The replica''s lease duration: it counts as alive while its heartbeat is younger than this.';

-- One lease per cluster. Times are the database's clock (now()), never a replica's, so replica
-- clock skew cannot make two holders; a replica keeps its own, shorter, monotonic deadline
-- (time of the renewing request + duration - safety margin) and stops writing past it.
CREATE TABLE cluster_leases (
    cluster      text        PRIMARY KEY,
    holder       text,
    epoch        bigint      NOT NULL DEFAULT 0,
    acquired_at  timestamptz,
    expires_at   timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE cluster_leases IS 'Which replica runs each cluster''s watch set, writer and prober; free when holder is NULL or expires_at has passed.';
COMMENT ON COLUMN cluster_leases.holder IS 'The replicas.id holding the lease (not a foreign key: a crashed holder''s row may be pruned before its lease expires).';
COMMENT ON COLUMN cluster_leases.epoch IS 'Fencing token: incremented on every change of holder, never on renewal.';
COMMENT ON COLUMN cluster_leases.expires_at IS 'The lease is free after this instant (database clock) unless renewed.';
CREATE INDEX cluster_leases_holder_idx ON cluster_leases (holder);
