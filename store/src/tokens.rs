//! The `api_tokens` table: bearer tokens for the HTTP API, stored as SHA-256 hashes.
//!
//! A token is `lpt_` followed by 256 random bits (base64url). Because the secret is random and
//! long, a fast hash is enough (no salt, no KDF): the hash is the lookup key.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use ring::rand::SecureRandom as _;
use secrecy::{ExposeSecret as _, SecretString};
use sqlx::PgConnection;

use crate::{Result, StoreError};

/// Every token starts with this, so leaked tokens are easy to grep for in logs and repositories.
pub const TOKEN_PREFIX: &str = "lpt_";

pub use linkplane_core::status::Role;

/// A token's metadata (never its secret or hash).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInfo {
    /// Row id, used to revoke.
    pub id: i64,
    /// Free-form label, e.g. who holds it.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last successful authentication (refreshed at most once a minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// Set once revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Who a presented token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authenticated {
    /// Token id.
    pub id: i64,
    /// Its role.
    pub role: Role,
}

struct Row {
    id: i64,
    name: String,
    role: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<Row> for TokenInfo {
    fn from(r: Row) -> Self {
        TokenInfo {
            id: r.id,
            name: r.name,
            // The CHECK constraint guarantees a known value; fall back to the least privilege.
            role: Role::parse(&r.role).unwrap_or(Role::Viewer),
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            revoked_at: r.revoked_at,
        }
    }
}

fn hash(token: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

/// A fresh random token (not stored).
pub fn generate() -> Result<SecretString> {
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| StoreError::Invalid {
            kind: "ApiToken",
            name: String::new(),
            reason: "the system random number generator failed".into(),
        })?;
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    Ok(SecretString::from(format!("{TOKEN_PREFIX}{encoded}")))
}

/// Creates a token and returns its metadata and the secret, which is not retrievable later.
pub async fn issue(
    conn: &mut PgConnection,
    role: Role,
    name: &str,
) -> Result<(TokenInfo, SecretString)> {
    let token = generate()?;
    let info = insert(conn, role, name, token.expose_secret()).await?;
    Ok((info, token))
}

async fn insert(conn: &mut PgConnection, role: Role, name: &str, token: &str) -> Result<TokenInfo> {
    let row: Row = sqlx::query_as!(
        Row,
        "INSERT INTO api_tokens (name, role, token_hash) VALUES ($1, $2, $3)
         RETURNING id, name, role, created_at, last_used_at, revoked_at",
        name,
        role.as_str(),
        hash(token),
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| StoreError::from_sqlx("ApiToken", name, "creating a token", e))?;
    Ok(row.into())
}

/// Stores a token chosen outside linkplane (the Helm chart's bootstrap admin token), idempotently:
/// an already-stored token keeps its row (and stays revoked if it was revoked).
/// Rejects tokens shorter than 32 characters, which would be guessable.
pub async fn ensure(
    conn: &mut PgConnection,
    role: Role,
    name: &str,
    token: &SecretString,
) -> Result<()> {
    if token.expose_secret().len() < 32 {
        return Err(StoreError::Invalid {
            kind: "ApiToken",
            name: name.to_string(),
            reason: "a token must be at least 32 characters".into(),
        });
    }
    sqlx::query!(
        "INSERT INTO api_tokens (name, role, token_hash) VALUES ($1, $2, $3)
         ON CONFLICT (token_hash) DO NOTHING",
        name,
        role.as_str(),
        hash(token.expose_secret()),
    )
    .execute(&mut *conn)
    .await
    .map_err(|e| StoreError::from_sqlx("ApiToken", name, "storing a token", e))?;
    Ok(())
}

/// Looks a presented token up; `None` when unknown or revoked. Refreshes `last_used_at` at most
/// once a minute, in the same statement.
pub async fn authenticate(conn: &mut PgConnection, token: &str) -> Result<Option<Authenticated>> {
    let row = sqlx::query!(
        "WITH t AS (SELECT id, role, last_used_at FROM api_tokens
                    WHERE token_hash = $1 AND revoked_at IS NULL),
              touched AS (UPDATE api_tokens SET last_used_at = now() FROM t
                          WHERE api_tokens.id = t.id
                            AND (t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute'))
         SELECT id, role FROM t",
        hash(token),
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::db("authenticating a token"))?;
    Ok(row.map(|r| Authenticated {
        id: r.id,
        role: Role::parse(&r.role).unwrap_or(Role::Viewer),
    }))
}

/// Every token's metadata, by id.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<TokenInfo>> {
    let rows: Vec<Row> = sqlx::query_as!(
        Row,
        "SELECT id, name, role, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY id",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(StoreError::db("listing tokens"))?;
    Ok(rows.into_iter().map(TokenInfo::from).collect())
}

/// One token's metadata by id (revoked tokens included); `None` when no such token exists.
pub async fn get(conn: &mut PgConnection, id: i64) -> Result<Option<TokenInfo>> {
    let row: Option<Row> = sqlx::query_as!(
        Row,
        "SELECT id, name, role, created_at, last_used_at, revoked_at FROM api_tokens WHERE id = $1",
        id,
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::db("reading a token"))?;
    Ok(row.map(TokenInfo::from))
}

/// Revokes a token; `NotFound` when no such token exists. Revoking twice keeps the first time.
pub async fn revoke(conn: &mut PgConnection, id: i64) -> Result<TokenInfo> {
    let row: Option<Row> = sqlx::query_as!(
        Row,
        "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1
         RETURNING id, name, role, created_at, last_used_at, revoked_at",
        id,
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(StoreError::db("revoking a token"))?;
    row.map(TokenInfo::from).ok_or(StoreError::NotFound {
        kind: "ApiToken",
        name: id.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_prefixed_random_and_long() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert!(a.expose_secret().starts_with(TOKEN_PREFIX));
        assert_eq!(a.expose_secret().len(), TOKEN_PREFIX.len() + 43);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn roles_are_ordered_by_privilege() {
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
        for r in [Role::Viewer, Role::Operator, Role::Admin] {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn issued_token_authenticates_until_revoked(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        let (info, token) = issue(&mut conn, Role::Operator, "ci").await.unwrap();
        let who = authenticate(&mut conn, token.expose_secret())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            who,
            Authenticated {
                id: info.id,
                role: Role::Operator
            }
        );
        let listed = list(&mut conn).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].last_used_at.is_some());
        assert!(
            authenticate(&mut conn, "lpt_wrong")
                .await
                .unwrap()
                .is_none()
        );
        let revoked = revoke(&mut conn, info.id).await.unwrap();
        assert!(revoked.revoked_at.is_some());
        assert!(
            authenticate(&mut conn, token.expose_secret())
                .await
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            revoke(&mut conn, 999).await,
            Err(StoreError::NotFound { .. })
        ));
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn the_secret_is_not_stored(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        let (_, token) = issue(&mut conn, Role::Viewer, "").await.unwrap();
        let found: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM api_tokens WHERE position($1::bytea in token_hash) > 0 OR name = $2",
        )
        .bind(token.expose_secret().as_bytes())
        .bind(token.expose_secret())
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        assert_eq!(found, 0);
    }

    #[sqlx::test(migrator = "crate::MIGRATOR")]
    async fn bootstrap_token_is_stored_once_and_short_ones_are_rejected(pool: sqlx::PgPool) {
        let mut conn = pool.acquire().await.unwrap();
        let token = SecretString::from("bootstrap-token-0123456789abcdefXYZ");
        ensure(&mut conn, Role::Admin, "bootstrap", &token)
            .await
            .unwrap();
        ensure(&mut conn, Role::Admin, "bootstrap", &token)
            .await
            .unwrap();
        assert_eq!(list(&mut conn).await.unwrap().len(), 1);
        let who = authenticate(&mut conn, token.expose_secret())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(who.role, Role::Admin);
        let short = SecretString::from("short");
        assert!(matches!(
            ensure(&mut conn, Role::Admin, "b", &short).await,
            Err(StoreError::Invalid { .. })
        ));
    }
}
