-- 0004 api: credentials of the API itself (bearer tokens) and of the linked clusters (kubeconfigs
-- set through `setClusterCredentials`). Neither is ever stored in the clear.

-- Bearer tokens. Tokens are 256 random bits, so a fast unsalted SHA-256 is enough: there is no
-- dictionary to attack, and lookups stay a single index probe.
CREATE TABLE api_tokens (
    id            bigserial   PRIMARY KEY,
    name          text        NOT NULL DEFAULT '' CHECK (length(name) <= 128),
    role          text        NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    token_hash    bytea       NOT NULL CHECK (length(token_hash) = 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz,
    CONSTRAINT api_tokens_hash_unique UNIQUE (token_hash)
);
COMMENT ON TABLE api_tokens IS 'API bearer tokens: SHA-256 of the token only; the token is shown once at creation.';
COMMENT ON COLUMN api_tokens.last_used_at IS 'Refreshed at most once a minute, so authentication is not a write per request.';
COMMENT ON COLUMN api_tokens.revoked_at IS 'Revoked tokens are kept for audit and never authenticate again.';

-- Kubeconfigs set through the API, sealed with AES-256-GCM under the server key
-- (--credentials-key-file / LINKPLANE_CREDENTIALS_KEY). The cluster name is the associated data,
-- so a ciphertext copied onto another cluster's row fails to open.
CREATE TABLE cluster_credentials (
    cluster          object_name PRIMARY KEY REFERENCES clusters(name) ON DELETE CASCADE,
    nonce            bytea       NOT NULL CHECK (length(nonce) = 12),
    ciphertext       bytea       NOT NULL,
    key_fingerprint  text        NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE cluster_credentials IS 'Encrypted kubeconfigs (AES-256-GCM, random nonce per write, AAD = cluster name).';
COMMENT ON COLUMN cluster_credentials.key_fingerprint IS 'First 8 bytes of SHA-256(key), hex: tells "wrong key" from "corrupt row".';

-- Reconcilers restart a cluster's client when its stored credentials change.
CREATE FUNCTION notify_credentials_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('linkplane_config', json_build_object(
        'table', TG_TABLE_NAME,
        'op', TG_OP,
        'name', COALESCE(NEW.cluster, OLD.cluster)
    )::text);
    RETURN NULL;
END $$;
CREATE TRIGGER cluster_credentials_notify AFTER INSERT OR UPDATE OR DELETE ON cluster_credentials
    FOR EACH ROW EXECUTE FUNCTION notify_credentials_change();

-- The API groups mirrors into exported services (target cluster, namespace, name) and pages
-- through them in that order; the existing indexes serve neither.
CREATE INDEX mirrors_service_idx ON mirrors (target_cluster, remote_namespace, remote_name);
