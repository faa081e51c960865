-- Prune safety (issue 15): a revision that would delete every object of a source, or more than
-- its prune limit, is held instead of applied, until an operator approves that very revision.

-- A held source: nothing was written, the last good revision stays applied.
ALTER TABLE git_sources DROP CONSTRAINT git_sources_status_check;
ALTER TABLE git_sources ADD CONSTRAINT git_sources_status_check
    CHECK (status IN ('Unknown', 'Synced', 'OutOfSync', 'Failed', 'PruneHeld'));

-- The one revision an operator allowed to prune past the limits; any other commit is held again.
ALTER TABLE git_sources ADD COLUMN prune_approved_revision text;
COMMENT ON COLUMN git_sources.prune_approved_revision IS
    'Commit an operator approved despite the prune limits (approvePrune); other commits are checked as usual.';

-- A held attempt is recorded in the history with the plan it would have applied.
ALTER TABLE sync_history DROP CONSTRAINT sync_history_result_check;
ALTER TABLE sync_history ADD CONSTRAINT sync_history_result_check
    CHECK (result IN ('Applied', 'Unchanged', 'Rejected', 'Failed', 'Held'));
