-- 0005 mirror counts: how many mirrors each link has in each state, kept exact by triggers on
-- `mirrors`, so `topology` and every `mirrorCounts` field read one row per (link, state) instead
-- of aggregating every mirror on each request (at 20,000 mirrors the GROUP BY cost 5-8 ms, and
-- far more under load; this table answers in a fraction of a millisecond whatever the fleet size).
--
-- Row-level triggers rather than statement-level ones with transition tables: the mirror writer
-- records states one row per statement, and a statement trigger (with its transition tables)
-- costs several times more per single-row upsert, and fires even when the upsert changes nothing.
-- The update trigger only fires when a row's state or link changes, so message-only updates and
-- identical re-reports cost nothing extra.
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
COMMENT ON COLUMN mirror_counts.n IS 'Number of mirrors; 0 once a state empties (the row stays until its link goes, so a state flapping does not insert and delete rows).';

-- One statement per changed row. An update adds +1 to the new (link, state) and -1 to the old one
-- in a single upsert whose rows are sorted, so two transactions touching the same counts always
-- lock them in the same order. No CHECK (n >= 0): PostgreSQL checks constraints on the proposed
-- row before resolving the conflict, which would reject every decrement.
CREATE FUNCTION mirror_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO mirror_counts AS c (link, state, n) VALUES (NEW.link, NEW.state, 1)
        ON CONFLICT (link, state) DO UPDATE SET n = c.n + 1;
    ELSIF TG_OP = 'DELETE' THEN
        -- The row may already be gone when the link itself is being deleted (cascade).
        UPDATE mirror_counts SET n = n - 1 WHERE link = OLD.link AND state = OLD.state;
    ELSE
        INSERT INTO mirror_counts AS c (link, state, n)
        SELECT d.link, d.state, d.n
        FROM (VALUES (NEW.link::text, NEW.state, 1::bigint), (OLD.link::text, OLD.state, -1::bigint)) AS d(link, state, n)
        ORDER BY d.link, d.state
        ON CONFLICT (link, state) DO UPDATE SET n = c.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER mirror_counts_insert_delete AFTER INSERT OR DELETE ON mirrors
    FOR EACH ROW EXECUTE FUNCTION mirror_counts_track();
CREATE TRIGGER mirror_counts_update AFTER UPDATE OF link, state ON mirrors
    FOR EACH ROW WHEN (OLD.link IS DISTINCT FROM NEW.link OR OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION mirror_counts_track();

-- TRUNCATE fires no row triggers.
CREATE FUNCTION mirror_counts_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM mirror_counts;
    RETURN NULL;
END $$;
CREATE TRIGGER mirror_counts_truncate AFTER TRUNCATE ON mirrors
    FOR EACH STATEMENT EXECUTE FUNCTION mirror_counts_truncate();

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
