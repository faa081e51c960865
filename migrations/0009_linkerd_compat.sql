-- Linkerd compatibility (issue 14).
--
-- links.spec gains adoptLinkerdMirrors (core::LinkSpec, default true; JSON, no column): mirrors
-- Linkerd's service mirror wrote for the link's target are adopted, updated and collected like
-- linkplane's own. A team may set it to false to keep Linkerd-written mirrors untouched. The
-- clean-up of a removed link must honour it too, after the link row is gone, so the request
-- records it.

ALTER TABLE link_cleanups
    ADD COLUMN adopt_linkerd_mirrors boolean NOT NULL DEFAULT true;
COMMENT ON COLUMN link_cleanups.adopt_linkerd_mirrors IS
    'The removed link adopted Linkerd-written mirrors (spec.adoptLinkerdMirrors): delete those too; false deletes only mirrors labelled linkplane.io/remote-service.';

CREATE OR REPLACE FUNCTION record_link_cleanup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.source_cluster = NEW.source_cluster
                        AND OLD.target_cluster = NEW.target_cluster THEN
        RETURN NULL;
    END IF;
    -- cleanupOnUnlink and adoptLinkerdMirrors default to true (core::LinkSpec); a paused link
    -- keeps its mirrors.
    IF NOT OLD.paused AND COALESCE((OLD.spec ->> 'cleanupOnUnlink')::boolean, true) THEN
        INSERT INTO link_cleanups (source_cluster, target_cluster, link, adopt_linkerd_mirrors)
        VALUES (OLD.source_cluster, OLD.target_cluster, OLD.name,
                COALESCE((OLD.spec ->> 'adoptLinkerdMirrors')::boolean, true))
        ON CONFLICT (source_cluster, target_cluster)
        DO UPDATE SET link = EXCLUDED.link, requested_at = now(),
                      adopt_linkerd_mirrors = EXCLUDED.adopt_linkerd_mirrors;
    END IF;
    RETURN NULL;
END $$;
