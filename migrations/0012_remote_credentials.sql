-- Remote-discovery credentials provisioned by linkplane (issue 14, point 1).
--
-- clusters.spec gains trustDomain (default cluster.local) and linkerdNamespace (default linkerd):
-- JSON in core::ClusterSpec, no column. For each (source, target) pair of a link that may
-- receive remote-discovery or federated mirrors, the mirror writes into the source cluster's
-- Linkerd namespace the Secret cluster-credentials-<target> that Linkerd's destination
-- controller reads; this table is the state of each such credential, as the API shows it.
-- No foreign key: the row outlives its link until the clean-up has deleted the Secret.
-- Never holds the token.

CREATE TABLE remote_credentials (
    source_cluster text NOT NULL,
    target_cluster text NOT NULL,
    state          text NOT NULL
        CHECK (state IN ('Pending', 'Issued', 'NamespaceMissing', 'Error')),
    secret_name    text NOT NULL,
    namespace      text NOT NULL,
    issued_at      timestamptz,
    expires_at     timestamptz,
    message        text NOT NULL DEFAULT '',
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source_cluster, target_cluster)
);
COMMENT ON TABLE remote_credentials IS
    'State of the remote-discovery credentials Secret linkplane keeps in each source cluster for one target (never the token).';
COMMENT ON COLUMN remote_credentials.state IS
    'Pending (not written yet), Issued (the Secret holds a valid token), NamespaceMissing (the source cluster has no Linkerd namespace; linkplane never creates it), Error (see message; an issued token stays valid until expires_at).';
COMMENT ON COLUMN remote_credentials.issued_at IS 'When the token in the Secret was issued (TokenRequest).';
COMMENT ON COLUMN remote_credentials.expires_at IS 'When the token in the Secret expires; it is renewed well before.';
