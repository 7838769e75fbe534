//! How a stored credential authenticates to Drift: its key, and, when it has OAuth settings
//! ([`store::Store::set_credential_oauth`]), the refresh that mints a new access token when
//! the old one expires (REFERENCE §2.2) and stores the new tokens back, encrypted; when another
//! process using the credential refreshed first, its stored tokens are used instead. Every
//! client driftbridge builds from a saved credential (sync, push, test, scope check) comes
//! from here, so an expired OAuth token is refreshed the same way everywhere.

use crate::addresses::AddressPolicy;
use drift_client::{ClientBuilder, OAuthRefresh, SecretString, TokenGrant};
use std::sync::{Arc, Mutex};
use store::{Credential, Store, StoreError};

/// The key to send and the OAuth refresh, if any. `Debug` shows no secret.
#[derive(Debug)]
pub struct DriftAuth {
    key: SecretString,
    oauth: Option<OAuthRefresh>,
}

impl DriftAuth {
    /// A bare key (a value typed into the Add Credential overlay and not saved yet).
    pub fn key_only(key: SecretString) -> DriftAuth {
        DriftAuth { key, oauth: None }
    }

    /// A key with an OAuth refresh that is not saved anywhere (the protocol modes'
    /// `oauth` config object: the platform running driftbridge keeps the tokens): refreshed
    /// tokens live in this process only.
    pub fn with_oauth(key: SecretString, oauth: OAuthRefresh) -> DriftAuth {
        DriftAuth {
            key,
            oauth: Some(oauth),
        }
    }

    /// The authentication of a credential not saved yet (being added): `key` and, when given,
    /// its OAuth app. A refresh during the test is kept in the returned cell, not saved, so
    /// that the caller saves the new tokens with the credential (or drops them with it).
    pub fn unsaved(
        key: SecretString,
        oauth: Option<&store::OAuthSettings>,
    ) -> (DriftAuth, Arc<Mutex<Option<TokenGrant>>>) {
        let cell: Arc<Mutex<Option<TokenGrant>>> = Arc::new(Mutex::new(None));
        let Some(settings) = oauth else {
            return (DriftAuth::key_only(key), cell);
        };
        let keep = Arc::clone(&cell);
        let on_refresh = Arc::new(move |grant: &TokenGrant| {
            *keep.lock().unwrap_or_else(|e| e.into_inner()) = Some(grant.clone());
            Ok(())
        });
        let auth = DriftAuth {
            key,
            oauth: Some(OAuthRefresh {
                client_id: settings.client_id.clone(),
                client_secret: settings.client_secret.clone(),
                refresh_token: settings.refresh_token.clone(),
                on_refresh,
                reload: None,
            }),
        };
        (auth, cell)
    }

    /// The authentication of saved credential `credential`: its key decrypted, and its OAuth
    /// refresh when it has one; refreshed tokens are saved to `store`'s data directory under
    /// the credential's id (with `expires_at` = now + `expires_in`).
    ///
    /// Errors: the store's ([`StoreError::WrongMasterKey`], [`StoreError::Decrypt`],
    /// [`StoreError::NotFound`]).
    pub fn of(store: &Store, credential: &Credential) -> Result<DriftAuth, StoreError> {
        let key = store.credential_api_key(&credential.name)?;
        let Some(settings) = store.credential_oauth(&credential.name)? else {
            return Ok(DriftAuth::key_only(key));
        };
        let saver = Mutex::new(store.reopen()?);
        let id = credential.id.clone();
        let on_refresh = Arc::new(move |grant: &TokenGrant| {
            let expires_at = grant_expires_at(grant);
            let store = saver.lock().unwrap_or_else(|e| e.into_inner());
            store
                .save_refreshed_tokens(
                    &id,
                    &grant.access_token,
                    grant.refresh_token.as_ref(),
                    expires_at,
                )
                .map_err(|e| e.to_string())
        });
        let reader = Mutex::new(store.reopen()?);
        let name = credential.name.clone();
        let reload = Arc::new(move || {
            let store = reader.lock().unwrap_or_else(|e| e.into_inner());
            let access = store.credential_api_key(&name).ok()?;
            let refresh = store
                .credential_oauth(&name)
                .ok()
                .flatten()
                .map(|o| o.refresh_token);
            Some((access, refresh))
        });
        Ok(DriftAuth {
            key,
            oauth: Some(OAuthRefresh {
                client_id: settings.client_id,
                client_secret: settings.client_secret,
                refresh_token: settings.refresh_token,
                on_refresh,
                reload: Some(reload),
            }),
        })
    }

    /// The secrets this authentication holds (the key; the OAuth client secret and refresh
    /// token), for a run log to redact.
    pub fn secrets(&self) -> Vec<SecretString> {
        let mut all = vec![self.key.clone()];
        if let Some(o) = &self.oauth {
            all.push(o.client_secret.clone());
            all.push(o.refresh_token.clone());
        }
        all
    }

    /// A client builder for `base_url` with this authentication, under `addresses`.
    pub fn client(self, base_url: &str, addresses: AddressPolicy) -> ClientBuilder {
        let builder = addresses.client(base_url, self.key);
        match self.oauth {
            Some(oauth) => builder.oauth_refresh(oauth),
            None => builder,
        }
    }
}

/// When a refreshed access token expires, epoch ms (now + `expires_in`); `None` when not sent.
pub(crate) fn grant_expires_at(grant: &TokenGrant) -> Option<i64> {
    grant
        .expires_in_s
        .filter(|s| *s > 0)
        .map(|s| now_ms().saturating_add(i64::try_from(s).unwrap_or(i64::MAX / 2) * 1000))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
