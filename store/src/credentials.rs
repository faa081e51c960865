//! The `cluster_credentials` table: kubeconfigs set through the API, sealed with AES-256-GCM.
//!
//! The server key (32 bytes) comes from `--credentials-key-file` / `LINKPLANE_CREDENTIALS_KEY`,
//! written as 64 hex digits or as standard base64 (e.g. `openssl rand -base64 32`). Every write
//! uses a fresh random 96-bit nonce; the cluster name is the associated data, so a row copied onto
//! another cluster does not open. Plaintext only ever leaves this module as a [`SecretString`].

use base64::Engine as _;
use ring::{
    aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey},
    rand::{SecureRandom as _, SystemRandom},
};
use secrecy::{ExposeSecret as _, SecretString};
use sqlx::PgConnection;

use crate::StoreError;

/// Largest kubeconfig accepted (1 MiB): real ones are a few KiB; this bounds memory per request.
pub const MAX_KUBECONFIG_BYTES: usize = 1024 * 1024;

/// What can go wrong reading or writing sealed credentials.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The key is not 32 bytes of hex or base64.
    #[error("the credentials key must be 32 bytes written as 64 hex digits or base64: {0}")]
    InvalidKey(&'static str),
    /// The row was sealed with another key (the key was rotated or misconfigured).
    #[error("stored credentials of cluster {cluster:?} were encrypted with a different key")]
    WrongKey {
        /// Cluster name.
        cluster: String,
    },
    /// The ciphertext does not authenticate: the row was tampered with or corrupted.
    #[error(
        "stored credentials of cluster {cluster:?} cannot be decrypted (corrupted or tampered)"
    )]
    Undecryptable {
        /// Cluster name.
        cluster: String,
    },
    /// The plaintext is empty, too large or not UTF-8.
    #[error("invalid kubeconfig: {0}")]
    InvalidKubeconfig(&'static str),
    /// The system random number generator or the cipher failed.
    #[error("encryption failed")]
    Crypto,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The server's AES-256-GCM key. `Debug` never prints it.
pub struct CredentialsKey {
    key: LessSafeKey,
    fingerprint: String,
}

impl std::fmt::Debug for CredentialsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialsKey")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl CredentialsKey {
    /// Builds a key from raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CredentialsError> {
        if bytes.len() != 32 {
            return Err(CredentialsError::InvalidKey("wrong length"));
        }
        let unbound = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| CredentialsError::InvalidKey("rejected by the cipher"))?;
        let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
        Ok(Self {
            key: LessSafeKey::new(unbound),
            fingerprint: hex::encode(&digest.as_ref()[..8]),
        })
    }

    /// Parses 64 hex digits or standard/URL-safe base64 (surrounding whitespace ignored, so a
    /// file written by `openssl rand -base64 32 > key` works).
    pub fn from_encoded(text: &str) -> Result<Self, CredentialsError> {
        let text = text.trim();
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|_| CredentialsError::InvalidKey("bad hex"))?
        } else {
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
                .map_err(|_| CredentialsError::InvalidKey("neither hex nor base64"))?
        };
        Self::from_bytes(&bytes)
    }

    /// First 8 bytes of SHA-256(key), hex: identifies the key without revealing it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

/// Seals and stores a cluster's kubeconfig, replacing any previous one. `Reference` (as a
/// [`CredentialsError::Store`]) when the cluster does not exist.
pub async fn put(
    conn: &mut PgConnection,
    cluster: &str,
    kubeconfig: &SecretString,
    key: &CredentialsKey,
) -> Result<(), CredentialsError> {
    let plain = kubeconfig.expose_secret();
    if plain.trim().is_empty() {
        return Err(CredentialsError::InvalidKubeconfig("it is empty"));
    }
    if plain.len() > MAX_KUBECONFIG_BYTES {
        return Err(CredentialsError::InvalidKubeconfig(
            "it is larger than 1 MiB",
        ));
    }
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| CredentialsError::Crypto)?;
    let mut sealed = plain.as_bytes().to_vec();
    key.key
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(cluster.as_bytes()),
            &mut sealed,
        )
        .map_err(|_| CredentialsError::Crypto)?;
    sqlx::query!(
        "INSERT INTO cluster_credentials (cluster, nonce, ciphertext, key_fingerprint) VALUES ($1, $2, $3, $4)
         ON CONFLICT (cluster) DO UPDATE SET nonce = EXCLUDED.nonce, ciphertext = EXCLUDED.ciphertext,
             key_fingerprint = EXCLUDED.key_fingerprint, updated_at = now()",
        cluster,
        &nonce[..],
        sealed,
        key.fingerprint(),
    )
    .execute(&mut *conn)
    .await
    .map_err(|e| match StoreError::from_sqlx("Cluster", cluster, "storing credentials", e) {
        StoreError::Reference { kind, name, .. } => StoreError::NotFound { kind, name },
        other => other,
    })?;
    Ok(())
}

/// A cluster's stored kubeconfig, decrypted; `None` when none was set.
pub async fn get(
    conn: &mut PgConnection,
    cluster: &str,
    key: &CredentialsKey,
) -> Result<Option<SecretString>, CredentialsError> {
    let row = sqlx::query!(
        "SELECT nonce, ciphertext, key_fingerprint FROM cluster_credentials WHERE cluster = $1",
        cluster,
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::db("reading credentials"))?
    .map(|r| (r.nonce, r.ciphertext, r.key_fingerprint));
    let Some((nonce, mut sealed, fingerprint)) = row else {
        return Ok(None);
    };
    if fingerprint != key.fingerprint() {
        return Err(CredentialsError::WrongKey {
            cluster: cluster.to_string(),
        });
    }
    let undecryptable = || CredentialsError::Undecryptable {
        cluster: cluster.to_string(),
    };
    let nonce = Nonce::try_assume_unique_for_key(&nonce).map_err(|_| undecryptable())?;
    let plain = key
        .key
        .open_in_place(nonce, Aad::from(cluster.as_bytes()), &mut sealed)
        .map_err(|_| undecryptable())?;
    let text = String::from_utf8(plain.to_vec()).map_err(|_| undecryptable())?;
    Ok(Some(SecretString::from(text)))
}

/// Which of `clusters` have stored credentials (a yes/no the API may show; never the content).
pub async fn stored_for(
    conn: &mut PgConnection,
    clusters: &[String],
) -> Result<Vec<String>, StoreError> {
    sqlx::query_scalar!(
        "SELECT cluster FROM cluster_credentials WHERE cluster = ANY($1) ORDER BY cluster",
        clusters,
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db("listing stored credentials"))
}

/// Forgets a cluster's stored kubeconfig. Returns whether one existed.
pub async fn delete(conn: &mut PgConnection, cluster: &str) -> Result<bool, StoreError> {
    let done = sqlx::query!(
        "DELETE FROM cluster_credentials WHERE cluster = $1",
        cluster
    )
    .execute(&mut *conn)
    .await
    .map_err(StoreError::db("deleting credentials"))?;
    Ok(done.rows_affected() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Owner, clusters, test_support::cluster};

    const HEX_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const KUBECONFIG: &str =
        "apiVersion: v1\nkind: Config\nusers: [{name: u, user: {token: s3cr3t}}]\n";

    fn key() -> CredentialsKey {
        CredentialsKey::from_encoded(HEX_KEY).unwrap()
    }

    #[test]
    fn key_accepts_hex_and_base64_and_rejects_other_lengths() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(hex::decode(HEX_KEY).unwrap());
        let from_b64 = CredentialsKey::from_encoded(&format!("{b64}\n")).unwrap();
        assert_eq!(from_b64.fingerprint(), key().fingerprint());
        assert!(CredentialsKey::from_encoded("abcd").is_err());
        assert!(CredentialsKey::from_encoded("not base64 at all!").is_err());
        assert!(!format!("{:?}", key()).contains("0001020304"));
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn kubeconfig_round_trips_and_is_not_stored_in_clear(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        clusters::upsert(&mut conn, &cluster("east"), &Owner::Api)
            .await
            .unwrap();
        assert!(get(&mut conn, "east", &key()).await.unwrap().is_none());
        put(&mut conn, "east", &SecretString::from(KUBECONFIG), &key())
            .await
            .unwrap();
        let back = get(&mut conn, "east", &key()).await.unwrap().unwrap();
        assert_eq!(back.expose_secret(), KUBECONFIG);
        let leaked: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM cluster_credentials WHERE position('s3cr3t'::bytea in ciphertext) > 0",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert_eq!(leaked, 0);
        assert_eq!(
            stored_for(&mut conn, &["east".into(), "west".into()])
                .await
                .unwrap(),
            ["east"]
        );
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn wrong_key_swapped_rows_and_unknown_clusters_are_refused(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        for n in ["east", "west"] {
            clusters::upsert(&mut conn, &cluster(n), &Owner::Api)
                .await
                .unwrap();
        }
        put(&mut conn, "east", &SecretString::from(KUBECONFIG), &key())
            .await
            .unwrap();
        let other = CredentialsKey::from_bytes(&[7u8; 32]).unwrap();
        assert!(matches!(
            get(&mut conn, "east", &other).await,
            Err(CredentialsError::WrongKey { .. })
        ));
        // Copy east's sealed row onto west: the associated data (cluster name) no longer matches.
        sqlx::query(
            "INSERT INTO cluster_credentials (cluster, nonce, ciphertext, key_fingerprint)
             SELECT 'west', nonce, ciphertext, key_fingerprint FROM cluster_credentials WHERE cluster = 'east'",
        )
        .execute(&mut *conn)
        .await
        .unwrap();
        assert!(matches!(
            get(&mut conn, "west", &key()).await,
            Err(CredentialsError::Undecryptable { .. })
        ));
        assert!(matches!(
            put(&mut conn, "mars", &SecretString::from(KUBECONFIG), &key()).await,
            Err(CredentialsError::Store(StoreError::NotFound { .. }))
        ));
        assert!(matches!(
            put(&mut conn, "east", &SecretString::from("  "), &key()).await,
            Err(CredentialsError::InvalidKubeconfig(_))
        ));
        assert!(delete(&mut conn, "east").await.unwrap());
    }
}
