//! Request authentication: SigV4 against the store's access keys.

use strato_common::{Error, Result};
use strato_control::{Caller, ControlPlane};
use strato_sigv4::{Request, SecretLookup, VerifyError, VerifyOptions};

/// Looks secrets up in the store and remembers the key it found, so the account is
/// resolved without a second query.
struct StoreLookup<'a> {
    control: &'a ControlPlane,
    found: std::cell::RefCell<Option<strato_domain::AccessKey>>,
}

impl SecretLookup for StoreLookup<'_> {
    fn secret_for(&self, access_key_id: &str) -> Option<String> {
        let key = self.control.access_key(access_key_id).ok().flatten()?;
        let secret = key.secret_access_key.clone();
        *self.found.borrow_mut() = Some(key);
        Some(secret)
    }
}

/// Verifies the request's signature and resolves the calling account. `service` is
/// the service the action belongs to (`ec2` or `sts`).
pub fn authenticate(control: &ControlPlane, req: &Request, service: &str) -> Result<Caller> {
    let lookup = StoreLookup {
        control,
        found: Default::default(),
    };
    let verified = strato_sigv4::verify(
        req,
        time::OffsetDateTime::now_utc(),
        &lookup,
        &VerifyOptions::default(),
    )
    .map_err(|e| match e {
        VerifyError::Missing => {
            Error::MissingAuthenticationToken("Request is missing Authentication Token".into())
        }
        VerifyError::Incomplete(m) => Error::IncompleteSignature(m),
        VerifyError::UnknownAccessKey(_) => Error::AuthFailure(
            "AWS was not able to validate the provided access credentials".into(),
        ),
        VerifyError::Expired(m) => Error::RequestExpired(m),
        VerifyError::SignatureMismatch { canonical_request, .. } => {
            tracing::debug!(%canonical_request, "signature mismatch");
            Error::SignatureDoesNotMatch(
                "The request signature we calculated does not match the signature you provided. \
                 Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
                    .into(),
            )
        }
    })?;
    // As EC2 answers for a region that does not exist (or is not enabled): the
    // region of the credential scope is the region the request is for.
    if !control.cfg.serves(&verified.region) {
        return Err(Error::AuthFailure(format!(
            "Credential should be scoped to a valid region, not '{}'.",
            verified.region
        )));
    }
    if verified.service != service {
        return Err(Error::AuthFailure(format!(
            "Credential should be scoped to correct service: '{service}'."
        )));
    }
    let key = lookup
        .found
        .into_inner()
        .filter(|k| k.access_key_id == verified.access_key_id)
        .ok_or_else(|| {
            Error::AuthFailure(
                "AWS was not able to validate the provided access credentials".into(),
            )
        })?;
    Ok(Caller {
        account: key.account_id,
        access_key_id: key.access_key_id,
        region: verified.region,
    })
}
