-- 0006 one configuration notification per statement, not per row.
--
-- A Git sync writes a 10,000-object revision with a handful of set-based statements; the
-- per-row triggers of 0001 turned that into 10,000 pg_notify calls (~10 µs each inside the
-- statement) and 10,000 messages for every listener. The listeners only need "this table
-- changed": the mirror supervisor re-reads the whole configuration on any message (coalescing
-- bursts), and the GitOps runtime runs a drift check on any clusters/links/export_policies
-- message, reading only the payload's table. So clusters, links and export_policies now notify
-- once per statement that changed rows, with the same payload as before when the statement
-- changed exactly one row ({"table", "op", "name"}: what an API edit produces) and
-- {"table", "op", "count"} when it changed more. A statement that changed nothing (an upsert of
-- identical rows) notifies nothing, as before. git_sources and cluster_credentials keep their
-- per-row triggers: their listeners need the name, and they change one row at a time.
--
-- Postgres allows transition tables only on single-event triggers, hence three per table.

CREATE FUNCTION notify_config_statement() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n    bigint;
    one  text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT count(*), min(name) INTO n, one FROM changed_old;
    ELSE
        SELECT count(*), min(name) INTO n, one FROM changed_new;
    END IF;
    IF n = 1 THEN
        PERFORM pg_notify('linkplane_config', json_build_object(
            'table', TG_TABLE_NAME, 'op', TG_OP, 'name', one)::text);
    ELSIF n > 1 THEN
        PERFORM pg_notify('linkplane_config', json_build_object(
            'table', TG_TABLE_NAME, 'op', TG_OP, 'count', n)::text);
    END IF;
    RETURN NULL;
END $$;
COMMENT ON FUNCTION notify_config_statement() IS 'Statement-level linkplane_config notification: one per statement that changed rows of a declarative table.';

DROP TRIGGER clusters_notify ON clusters;
CREATE TRIGGER clusters_notify_insert AFTER INSERT ON clusters
    REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION notify_config_statement();
CREATE TRIGGER clusters_notify_update AFTER UPDATE ON clusters
    REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION notify_config_statement();
CREATE TRIGGER clusters_notify_delete AFTER DELETE ON clusters
    REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT EXECUTE FUNCTION notify_config_statement();

DROP TRIGGER links_notify ON links;
CREATE TRIGGER links_notify_insert AFTER INSERT ON links
    REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION notify_config_statement();
CREATE TRIGGER links_notify_update AFTER UPDATE ON links
    REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION notify_config_statement();
CREATE TRIGGER links_notify_delete AFTER DELETE ON links
    REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT EXECUTE FUNCTION notify_config_statement();

DROP TRIGGER export_policies_notify ON export_policies;
CREATE TRIGGER export_policies_notify_insert AFTER INSERT ON export_policies
    REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION notify_config_statement();
CREATE TRIGGER export_policies_notify_update AFTER UPDATE ON export_policies
    REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION notify_config_statement();
CREATE TRIGGER export_policies_notify_delete AFTER DELETE ON export_policies
    REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT EXECUTE FUNCTION notify_config_statement();
