//! Join tokens: what a host backend hands a browser so it can open one session as
//! one user, without ever holding an API key.
//!
//! A token is a JWT signed with HS256 under the deployment's secret. It names the
//! tenant, the session, the user and the co-editor limit of the plan that issued it,
//! so `$connect` needs no API key lookup. Its expiry is checked against the app's
//! clock (not the library's), so tests and the local stack can move time.
//!
//! Its header names the key it was signed with (`kid`, derived from the secret),
//! so the secret can be rotated with overlap: a deployment signs with its current
//! secret and accepts tokens of its previous one too, until they expire.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::config::SigningSecret;
use crate::error::{Code, Error, Result};
use crate::session::{Role, SessionId, TenantId, User};

const ISSUER: &str = "coedit";

/// What a valid join token grants: this user may open this session of this tenant
/// until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinGrant {
    pub tenant: TenantId,
    pub session: SessionId,
    pub user: User,
    /// The issuing plan's co-editor limit.
    pub max_editors: u32,
    pub expires_at: Timestamp,
}

impl JoinGrant {
    /// A grant is for one session only: any other answers 4030.
    pub fn require_session(&self, id: &SessionId) -> Result<()> {
        if &self.session != id {
            return Err(Error::new(
                Code::TokenNotValid,
                "the join token was issued for another session",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    /// The user id.
    sub: String,
    sid: String,
    ten: String,
    name: String,
    color: String,
    /// Absent for editors.
    #[serde(default, skip_serializing_if = "Role::is_editor")]
    role: Role,
    max: u32,
    iat: i64,
    exp: i64,
}

/// Signs a grant. `expires_at` is cut to whole seconds, as JWT's `exp` is.
pub fn issue(secret: &SigningSecret, grant: &JoinGrant, now: Timestamp) -> Result<String> {
    let claims = Claims {
        iss: ISSUER.to_owned(),
        sub: grant.user.user_id.clone(),
        sid: grant.session.to_string(),
        ten: grant.tenant.as_str().to_owned(),
        name: grant.user.username.clone(),
        color: grant.user.user_color.clone(),
        role: grant.user.role,
        max: grant.max_editors,
        iat: now.millis().div_euclid(1000),
        exp: grant.expires_at.millis().div_euclid(1000),
    };
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(secret.key_id());
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| Error::unexpected(format!("signing a join token: {e}")))
}

/// Checks a token's key, signature, issuer and expiry against the secrets a
/// deployment accepts (its current one, and its previous one while rotating).
/// Every failure is 4010 with a detail that says which check failed, never the
/// token or the secret.
pub fn verify(accepted: &[&SigningSecret], token: &str, now: Timestamp) -> Result<JoinGrant> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| {
        Error::unauthorized("the join token is not valid: it is not a well-formed JWT")
    })?;
    let kid = header.kid.unwrap_or_default();
    let secret = accepted
        .iter()
        .find(|s| s.key_id() == kid)
        .ok_or_else(|| {
            Error::unauthorized(
                "the join token is not valid: it was signed with a key this deployment does not accept (rotated out); ask the host application for a new one",
            )
        })?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "iss", "sub"]);
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map_err(|e| {
        let why = match e.kind() {
            ErrorKind::InvalidSignature => "its signature does not match",
            ErrorKind::InvalidAlgorithm => "it is not signed with HS256",
            ErrorKind::InvalidIssuer => "it was not issued by coedit",
            ErrorKind::MissingRequiredClaim(_) | ErrorKind::Json(_) => {
                "its claims are not a coedit join grant"
            }
            _ => "it is not a well-formed JWT",
        };
        Error::unauthorized(format!("the join token is not valid: {why}"))
    })?;
    let claims = data.claims;
    let expires_at = Timestamp(claims.exp.saturating_mul(1000));
    if now >= expires_at {
        return Err(Error::unauthorized(format!(
            "the join token expired at {}; ask the host application for a new one",
            expires_at.to_rfc3339()
        )));
    }
    let bad = |what: &str| Error::unauthorized(format!("the join token is not valid: {what}"));
    Ok(JoinGrant {
        tenant: TenantId::parse(&claims.ten).map_err(|_| bad("its tenant is malformed"))?,
        session: SessionId::parse(&claims.sid).ok_or_else(|| bad("its session id is malformed"))?,
        user: User {
            user_id: claims.sub,
            username: claims.name,
            user_color: claims.color,
            role: claims.role,
        },
        max_editors: claims.max,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn secret(fill: u8) -> SigningSecret {
        SigningSecret::new(vec![fill; 32]).unwrap()
    }

    fn grant(now: Timestamp) -> JoinGrant {
        JoinGrant {
            tenant: TenantId::parse("acme").unwrap(),
            session: SessionId::generate(),
            user: User {
                user_id: "u1".into(),
                username: "Ann".into(),
                user_color: "#c0ffee".into(),
                role: Role::Editor,
            },
            max_editors: 5,
            expires_at: now.plus(Duration::from_secs(600)),
        }
    }

    #[test]
    fn a_token_round_trips_until_it_expires() {
        let now = Timestamp(1_700_000_000_000);
        let g = grant(now);
        let token = issue(&secret(1), &g, now).unwrap();
        assert_eq!(verify(&[&secret(1)], &token, now).unwrap(), g);
        let at_expiry = now.plus(Duration::from_secs(600));
        let e = verify(&[&secret(1)], &token, at_expiry).unwrap_err();
        assert_eq!(e.code, Code::Unauthorized);
        assert!(e.detail.contains("expired"), "{}", e.detail);
    }

    #[test]
    fn tampering_and_foreign_secrets_are_refused() {
        let now = Timestamp(1_700_000_000_000);
        let token = issue(&secret(1), &grant(now), now).unwrap();
        let e = verify(&[&secret(2)], &token, now).unwrap_err();
        assert!(e.detail.contains("does not accept"), "{}", e.detail);
        // Another secret's signature under this key's id.
        let forged = issue(&secret(2), &grant(now), now).unwrap();
        let mut parts: Vec<&str> = forged.split('.').collect();
        parts[0] = token.split('.').next().unwrap();
        let e = verify(&[&secret(1)], &parts.join("."), now).unwrap_err();
        assert!(e.detail.contains("signature"), "{}", e.detail);

        // Swap the claims for another user's, keeping the signature.
        let other = issue(&secret(1), &grant(now), now).unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[1] = other.split('.').nth(1).unwrap();
        let e = verify(&[&secret(1)], &parts.join("."), now).unwrap_err();
        assert_eq!(e.code, Code::Unauthorized);

        for junk in ["", "abc", "a.b.c", "ck_123"] {
            let e = verify(&[&secret(1)], junk, now).unwrap_err();
            assert_eq!(e.code, Code::Unauthorized, "{junk}");
            assert!(!e.detail.contains(junk) || junk.is_empty() || junk == "abc");
        }
    }

    /// Rotation: tokens of the previous secret stay good while it is accepted,
    /// new ones are signed with the current one, and once the previous is dropped
    /// its tokens are refused.
    #[test]
    fn a_rotated_secret_is_accepted_until_dropped() {
        let now = Timestamp(1_700_000_000_000);
        let (old, new) = (secret(1), secret(2));
        assert_ne!(old.key_id(), new.key_id());
        let before = issue(&old, &grant(now), now).unwrap();
        let after = issue(&new, &grant(now), now).unwrap();
        for token in [&before, &after] {
            assert!(verify(&[&new, &old], token, now).is_ok());
        }
        assert!(verify(&[&new], &after, now).is_ok());
        let e = verify(&[&new], &before, now).unwrap_err();
        assert!(e.detail.contains("rotated out"), "{}", e.detail);
    }

    #[test]
    fn a_grant_is_for_its_own_session_only() {
        let g = grant(Timestamp(0));
        assert!(g.require_session(&g.session).is_ok());
        let e = g.require_session(&SessionId::generate()).unwrap_err();
        assert_eq!(e.code.number(), 4030);
    }
}
