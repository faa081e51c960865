-- Pending mirror clean-ups of removed links.
--
-- Removing a link (with spec.cleanupOnUnlink, the default, and not paused) must delete its mirrors
-- from the source cluster. The supervisor does that, but it may not be running when the link row
-- goes (a Git sync applied while the server restarts) or may not reach the source cluster at
-- that moment. So the request is recorded durably, in the same transaction as the delete, and
-- the supervisor removes the row only once the mirrors are gone. A link re-pointed to another
-- pair (UPDATE of source_cluster / target_cluster) leaves a clean-up of its old pair.

CREATE TABLE link_cleanups (
    source_cluster object_name NOT NULL,
    target_cluster object_name NOT NULL,
    link           object_name NOT NULL,
    requested_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_cluster, target_cluster)
);
COMMENT ON TABLE link_cleanups IS 'Mirrors of target_cluster in source_cluster still to delete because their link went; no foreign keys, the clusters may be gone too.';
COMMENT ON COLUMN link_cleanups.link IS 'Name of the removed link, for logs and status.';

CREATE FUNCTION record_link_cleanup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.source_cluster = NEW.source_cluster
                        AND OLD.target_cluster = NEW.target_cluster THEN
        RETURN NULL;
    END IF;
    -- cleanupOnUnlink defaults to true (core::LinkSpec); a paused link keeps its mirrors.
    IF NOT OLD.paused AND COALESCE((OLD.spec ->> 'cleanupOnUnlink')::boolean, true) THEN
        INSERT INTO link_cleanups (source_cluster, target_cluster, link)
        VALUES (OLD.source_cluster, OLD.target_cluster, OLD.name)
        ON CONFLICT (source_cluster, target_cluster)
        DO UPDATE SET link = EXCLUDED.link, requested_at = now();
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER links_record_cleanup AFTER DELETE OR UPDATE OF source_cluster, target_cluster ON links
    FOR EACH ROW EXECUTE FUNCTION record_link_cleanup();
