-- 0005 mirror counts: how many mirrors each link has in each state, kept exact by triggers on
-- `mirrors`, so `topology` and every `mirrorCounts` field read one row per (link, state) instead
-- of aggregating every mirror on each request (at 20,000 mirrors that GROUP BY cost 5-8 ms, and
-- far more under load; this table answers in a fraction of a millisecond whatever the fleet size).
--
-- Statement-level triggers with transition tables: the mirror writer records a whole flush with
-- one set-based upsert, and a link's deletion or a resync's garbage collection removes its
-- mirrors in one statement, so counts are adjusted once per statement with one aggregated upsert
-- (row-level triggers measured 2-6x slower on those statements). Upserts that change nothing and
-- updates that keep every state adjust nothing.
--
-- Counts are per link only: a link has exactly one source and one target cluster, so per-cluster
-- counts are sums over links (see store::topology::mirror_counts).

CREATE TABLE mirror_counts (
    link   object_name NOT NULL REFERENCES links(name) ON DELETE CASCADE,
    state  text        NOT NULL,
    n      bigint      NOT NULL,
    PRIMARY KEY (link, state)
);
COMMENT ON TABLE mirror_counts IS 'Mirrors per (link, state), maintained by the mirror_counts_* triggers on mirrors; never written by the application.';
COMMENT ON COLUMN mirror_counts.n IS 'Number of mirrors; 0 once a state empties (the row stays until its link goes, so a flapping state does not insert and delete rows).';

-- Increments and decrements go through one upsert whose rows are sorted by key, so two
-- statements adjusting the same counts lock them in the same order. There is no CHECK (n >= 0):
-- PostgreSQL checks constraints on the proposed row before resolving the conflict, which would
-- reject every decrement.
CREATE FUNCTION mirror_counts_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO mirror_counts AS c (link, state, n)
    SELECT link, state, count(*) FROM inserted GROUP BY link, state ORDER BY link, state
    ON CONFLICT (link, state) DO UPDATE SET n = c.n + EXCLUDED.n;
    RETURN NULL;
END $$;

CREATE FUNCTION mirror_counts_after_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO mirror_counts AS c (link, state, n)
    SELECT link, state, sum(d)
    FROM (SELECT link, state, 1 AS d FROM after_rows
          UNION ALL SELECT link, state, -1 FROM before_rows) delta
    GROUP BY link, state HAVING sum(d) <> 0 ORDER BY link, state
    ON CONFLICT (link, state) DO UPDATE SET n = c.n + EXCLUDED.n;
    RETURN NULL;
END $$;

-- A plain UPDATE, never an insert: when the link itself is being deleted, its counts may
-- already be gone (the cascade from links), and re-inserting them would fail the foreign key.
CREATE FUNCTION mirror_counts_after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE mirror_counts c SET n = c.n - d.n
    FROM (SELECT link, state, count(*) AS n FROM deleted GROUP BY link, state) d
    WHERE c.link = d.link AND c.state = d.state;
    RETURN NULL;
END $$;

CREATE FUNCTION mirror_counts_after_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM mirror_counts;
    RETURN NULL;
END $$;

-- An upsert (INSERT ... ON CONFLICT DO UPDATE) fires both the insert and the update trigger,
-- each seeing only the rows it inserted or updated.
CREATE TRIGGER mirror_counts_insert AFTER INSERT ON mirrors
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION mirror_counts_after_insert();
CREATE TRIGGER mirror_counts_update AFTER UPDATE ON mirrors
    REFERENCING OLD TABLE AS before_rows NEW TABLE AS after_rows
    FOR EACH STATEMENT EXECUTE FUNCTION mirror_counts_after_update();
CREATE TRIGGER mirror_counts_delete AFTER DELETE ON mirrors
    REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION mirror_counts_after_delete();
CREATE TRIGGER mirror_counts_truncate AFTER TRUNCATE ON mirrors
    FOR EACH STATEMENT EXECUTE FUNCTION mirror_counts_after_truncate();

-- Recomputes every count from `mirrors`: used once below, and the repair if the triggers were
-- ever bypassed (`SET session_replication_role = replica`, `ALTER TABLE ... DISABLE TRIGGER`).
CREATE FUNCTION mirror_counts_rebuild() RETURNS void LANGUAGE sql AS $$
    DELETE FROM mirror_counts;
    INSERT INTO mirror_counts (link, state, n)
    SELECT link, state, count(*) FROM mirrors GROUP BY link, state;
$$;
COMMENT ON FUNCTION mirror_counts_rebuild() IS 'Recomputes mirror_counts from mirrors (only needed if its triggers were bypassed).';

-- The migration runs in one transaction and creating the triggers locked `mirrors` against
-- writes, so no change slips between the triggers and this initial count.
SELECT mirror_counts_rebuild();
