//! Accounts (tenants) and their access keys.

use rand::Rng;
use strato_common::{time_fmt::now_ms, AccountId, Error, Result};
use strato_store::{AccessKey, Account, Db};

/// The name of the account created at first start.
pub const ROOT_ACCOUNT_NAME: &str = "root";

/// A fresh access key id in AWS's shape (`AKIA` and 16 upper-case letters or digits).
pub fn generate_access_key_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::thread_rng();
    let tail: String = (0..16)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("AKIA{tail}")
}

/// A fresh 40-character secret access key.
pub fn generate_secret() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::thread_rng();
    (0..40)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

fn check_key_shape(id: &str, secret: &str) -> Result<()> {
    if id.len() < 16 || id.len() > 128 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error::invalid_value(
            "an access key id is 16 to 128 letters and digits",
        ));
    }
    if secret.len() < 16 || secret.len() > 128 || secret.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(Error::invalid_value(
            "a secret access key is 16 to 128 printable characters without spaces",
        ));
    }
    Ok(())
}

/// Creates an account with one access key (generated unless given), atomically.
pub fn create_account(
    db: &Db,
    name: &str,
    key: Option<(String, String)>,
) -> Result<(Account, AccessKey)> {
    if name.is_empty() || name.len() > 64 {
        return Err(Error::invalid_value(
            "an account name is 1 to 64 characters",
        ));
    }
    let (key_id, secret) = key.unwrap_or_else(|| (generate_access_key_id(), generate_secret()));
    check_key_shape(&key_id, &secret)?;
    db.write(|tx| {
        let account = Account {
            id: AccountId::generate(),
            name: name.to_string(),
            created_ms: now_ms(),
        };
        tx.insert_account(&account)?;
        let key = AccessKey {
            access_key_id: key_id,
            secret_access_key: secret,
            account_id: account.id.clone(),
            created_ms: now_ms(),
        };
        tx.insert_access_key(&key)?;
        Ok((account, key))
    })
}

/// Adds an access key to an existing account.
pub fn create_access_key(
    db: &Db,
    account: &str,
    key: Option<(String, String)>,
) -> Result<AccessKey> {
    let (key_id, secret) = key.unwrap_or_else(|| (generate_access_key_id(), generate_secret()));
    check_key_shape(&key_id, &secret)?;
    db.write(|tx| {
        let acct = tx
            .find_account(account)?
            .ok_or_else(|| Error::invalid_value(format!("no account '{account}'")))?;
        let key = AccessKey {
            access_key_id: key_id,
            secret_access_key: secret,
            account_id: acct.id,
            created_ms: now_ms(),
        };
        tx.insert_access_key(&key)?;
        Ok(key)
    })
}

/// Creates the root account on first start; returns it and its first key either way.
pub fn ensure_root(db: &Db, key: Option<(String, String)>) -> Result<(Account, AccessKey)> {
    let existing = db.read(|tx| {
        let Some(acct) = tx.find_account(ROOT_ACCOUNT_NAME)? else {
            return Ok(None);
        };
        let keys = tx.access_keys_of(&acct.id)?;
        Ok(keys.into_iter().next().map(|k| (acct, k)))
    })?;
    match existing {
        Some(found) => Ok(found),
        None => create_account(db, ROOT_ACCOUNT_NAME, key),
    }
}

impl crate::ControlPlane {
    /// The access key with this id, for request authentication (`None` when unknown).
    pub fn access_key(&self, access_key_id: &str) -> Result<Option<AccessKey>> {
        self.db.read(|tx| tx.access_key(access_key_id))
    }

    /// How many visible instances are in each state, across accounts (for `/metrics`).
    pub fn instance_state_counts(&self) -> Result<Vec<(String, i64)>> {
        let since = self.visible_since();
        self.db.read(|tx| tx.instance_state_counts(since))
    }
}
