-- 0010 Git sources managed through the API (issue 16): suspending a source, and telling a source
-- declared by the server's --git-* flags (read-only through the API) from one added through it.

-- A suspended source is not synced automatically (startup, poll, webhook, self-heal); an
-- operator's syncNow or a pin change still syncs it. Resuming queues a sync.
ALTER TABLE git_sources ADD COLUMN suspended boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN git_sources.suspended IS
    'When true, no automatic sync (startup, poll, webhook, self-heal); manual syncs and pins still run.';

-- Who declares the source's spec: the API (addGitSource/updateGitSource) or the server's flags,
-- which rewrite it at every start; the API refuses to change or remove a flag-declared one.
ALTER TABLE git_sources ADD COLUMN declared_by text NOT NULL DEFAULT 'api'
    CHECK (declared_by IN ('api', 'flags'));
COMMENT ON COLUMN git_sources.declared_by IS
    '"flags": written by linkplane serve from --git-* at start-up (read-only through the API); "api": added through the API.';
