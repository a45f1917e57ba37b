//! # shiplog-oidc
//!
//! The [`IdentityProvider`] port over a standard OpenID Connect provider, with the
//! `openidconnect` crate: discovery from the issuer's `/.well-known/openid-configuration`, the
//! authorization code flow with PKCE (S256), `state` and `nonce`, and the ID token's signature
//! and claims (issuer, audience, expiry, nonce) verified against the issuer's published keys.
//!
//! The provider's metadata and keys are fetched at the first sign-in and kept. When an ID token
//! fails its signature check, they are fetched once more and the token checked again, so a key
//! the issuer rotated in is picked up without a restart; a token no published key verifies is
//! refused. The HTTP client follows no redirects (the crate's advice against request forgery).
//!
//! ## What this crate must never do
//! It decides nothing about access (groups become roles in `shiplog-app`), and it never logs a
//! code, token, verifier or secret.
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Duration;

use async_trait::async_trait;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreErrorResponseType,
    CoreGenderClaim, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    StandardErrorResponse, StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};
use shiplog_app::ports::{Identity, IdentityError, IdentityProvider, SignInAttempt, SignInStart};
use tokio::sync::RwLock;

/// The claims besides the standard ones, by name: where the groups claim is read from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct OtherClaims {
    #[serde(flatten)]
    claims: serde_json::Map<String, serde_json::Value>,
}

impl AdditionalClaims for OtherClaims {}

type IdTokenFields = openidconnect::IdTokenFields<
    OtherClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

type Client = openidconnect::Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    StandardTokenResponse<IdTokenFields, CoreTokenType>,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// How a server reaches its OpenID provider.
#[derive(Clone)]
pub struct OidcSettings {
    /// The issuer URL (`SHIPLOG_OIDC_ISSUER`), exactly as the provider names itself.
    pub issuer: String,
    /// The client id registered at the provider.
    pub client_id: String,
    /// The client secret (`None` for a public client).
    pub client_secret: Option<String>,
    /// Where the provider sends the browser back: `<public URL>/sign-in/callback`.
    pub redirect_url: String,
    /// Scopes asked for besides `openid` (e.g. `profile email groups`).
    pub scopes: Vec<String>,
    /// The claim that lists the person's groups (`groups`; `roles` for Entra ID app roles).
    pub groups_claim: String,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "…"))
            .field("redirect_url", &self.redirect_url)
            .field("scopes", &self.scopes)
            .field("groups_claim", &self.groups_claim)
            .finish()
    }
}

/// An OpenID provider, discovered at first use.
pub struct OidcProvider {
    settings: OidcSettings,
    issuer: IssuerUrl,
    redirect: RedirectUrl,
    http: reqwest::Client,
    client: RwLock<Option<Client>>,
}

impl OidcProvider {
    /// Checks the settings' URLs (nothing is fetched yet).
    pub fn new(settings: OidcSettings) -> Result<Self, String> {
        let issuer = IssuerUrl::new(settings.issuer.clone())
            .map_err(|e| format!("SHIPLOG_OIDC_ISSUER is not a URL: {e}"))?;
        let redirect = RedirectUrl::new(settings.redirect_url.clone())
            .map_err(|e| format!("the sign-in callback address is not a URL: {e}"))?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            // Sign-ins are rare: a fresh connection each time, rather than one the provider
            // may be closing as it idles (a reset token request would fail the sign-in).
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            settings,
            issuer,
            redirect,
            http,
            client: RwLock::new(None),
        })
    }

    /// The client over freshly discovered metadata and keys, kept for the next sign-ins.
    async fn discover(&self) -> Result<Client, IdentityError> {
        let metadata = CoreProviderMetadata::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| IdentityError::Unreachable(format!("discovery: {}", chain(&e))))?;
        let client = Client::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.settings.client_secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(self.redirect.clone());
        *self.client.write().await = Some(client.clone());
        Ok(client)
    }

    /// The kept client, or a discovered one.
    async fn client(&self) -> Result<Client, IdentityError> {
        if let Some(client) = self.client.read().await.as_ref() {
            return Ok(client.clone());
        }
        self.discover().await
    }

    /// The person the verified claims of `token` name.
    fn identity(
        &self,
        client: &Client,
        token: &openidconnect::IdToken<
            OtherClaims,
            CoreGenderClaim,
            CoreJweContentEncryptionAlgorithm,
            CoreJwsSigningAlgorithm,
        >,
        nonce: &Nonce,
    ) -> Result<Identity, ClaimsVerificationError> {
        let claims = token.claims(&client.id_token_verifier(), nonce)?;
        let groups = match claims
            .additional_claims()
            .claims
            .get(&self.settings.groups_claim)
        {
            Some(serde_json::Value::Array(values)) => values
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(serde_json::Value::String(one)) => vec![one.clone()],
            _ => Vec::new(),
        };
        Ok(Identity {
            issuer: claims.issuer().to_string(),
            subject: claims.subject().to_string(),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string()),
            email: claims.email().map(|e| e.to_string()),
            groups,
        })
    }
}

#[async_trait]
impl IdentityProvider for OidcProvider {
    async fn begin(&self) -> Result<SignInStart, IdentityError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in &self.settings.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok(SignInStart {
            url: url.to_string(),
            attempt: SignInAttempt {
                state: state.secret().clone(),
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
            },
        })
    }

    async fn redeem(&self, code: &str, attempt: &SignInAttempt) -> Result<Identity, IdentityError> {
        let client = self.client().await?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| IdentityError::Unreachable(format!("no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(attempt.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(answer) => {
                    IdentityError::Refused(answer.error_description().map_or_else(
                        || answer.error().as_ref().to_owned(),
                        |d| format!("{}: {d}", answer.error().as_ref()),
                    ))
                }
                other => IdentityError::Unreachable(format!("token endpoint: {}", chain(&other))),
            })?;
        let token = response
            .id_token()
            .ok_or_else(|| IdentityError::InvalidToken("the provider sent no ID token".into()))?;
        let nonce = Nonce::new(attempt.nonce.clone());
        match self.identity(&client, token, &nonce) {
            Ok(identity) => Ok(identity),
            // A key not seen yet: the issuer may have rotated its keys. Fetch them again,
            // once, and check the same token with them.
            Err(ClaimsVerificationError::SignatureVerification(_)) => {
                let client = self.discover().await?;
                self.identity(&client, token, &nonce)
                    .map_err(|e| IdentityError::InvalidToken(verification(&e)))
            }
            Err(e) => Err(IdentityError::InvalidToken(verification(&e))),
        }
    }
}

/// A verification failure, in words and with its cause.
fn verification(error: &ClaimsVerificationError) -> String {
    match error {
        ClaimsVerificationError::Expired(_) => "the ID token has expired".to_owned(),
        ClaimsVerificationError::SignatureVerification(cause) => {
            format!("the ID token's signature does not verify with the issuer's keys ({cause})")
        }
        other => chain(other),
    }
}

/// An error and its causes, on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}
