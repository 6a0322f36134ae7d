//! Signatures of provider callbacks: the provider signs the time of sending and the exact
//! body bytes with the shared secret (HMAC-SHA256) and sends
//! `Ordo-Signature: t=<unix seconds>,v1=<hex of hmac("<t>.<body>")>`. A signature older
//! than [`TOLERANCE`] (or as far in the future) is refused, so a captured callback cannot be
//! replayed later; a repeat within the window changes nothing because callbacks are
//! idempotent on the payment.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "ordo-signature";

/// How far the signed time may be from now, either way.
pub const TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// Why a callback's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No header, or not of the form `t=<unix>,v1=<hex>`.
    #[error("missing or malformed Ordo-Signature (expected t=<unix>,v1=<hex>)")]
    Malformed,
    /// The signed time is more than the tolerance away from now.
    #[error("the signature's time is more than 5 minutes from now")]
    Expired,
    /// The signature does not match the body and time.
    #[error("the signature does not match the body")]
    Mismatch,
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any size");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The header value signing `body` at `timestamp` (Unix seconds).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let signature = mac(secret, timestamp, body).finalize().into_bytes();
    format!("t={timestamp},v1={}", hex::encode(signature))
}

/// Checks that `header` signs `body` with `secret` at a time within [`TOLERANCE`] of `now`
/// (Unix seconds); the signature is compared in constant time.
pub fn verify(secret: &[u8], body: &[u8], header: &str, now: i64) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => {
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed)?,
                )
            }
            Some(("v1", value)) => {
                signatures.push(hex::decode(value).map_err(|_| SignatureError::Malformed)?)
            }
            // Other schemes (a future v2) are ignored, as providers do.
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if now.abs_diff(timestamp) > TOLERANCE.as_secs() {
        return Err(SignatureError::Expired);
    }
    let expected = mac(secret, timestamp, body);
    if signatures
        .iter()
        .any(|signature| expected.clone().verify_slice(signature).is_ok())
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The current time in Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_signature_verifies_only_its_own_body_secret_and_time() {
        let header = sign(b"secret", NOW, b"{\"a\":1}");
        assert_eq!(verify(b"secret", b"{\"a\":1}", &header, NOW), Ok(()));
        assert_eq!(
            verify(b"secret", b"{\"a\":2}", &header, NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", b"{\"a\":1}", &header, NOW),
            Err(SignatureError::Mismatch)
        );
        // The time is signed too: moving it breaks the signature.
        let moved = header.replace(&format!("t={NOW}"), &format!("t={}", NOW + 1));
        assert_eq!(
            verify(b"secret", b"{\"a\":1}", &moved, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_signature_older_or_newer_than_five_minutes_is_refused() {
        let body = b"{}";
        let at = |t: i64| sign(b"secret", t, body);
        assert_eq!(verify(b"secret", body, &at(NOW - 300), NOW), Ok(()));
        assert_eq!(verify(b"secret", body, &at(NOW + 300), NOW), Ok(()));
        assert_eq!(
            verify(b"secret", body, &at(NOW - 301), NOW),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            verify(b"secret", body, &at(NOW + 301), NOW),
            Err(SignatureError::Expired)
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        for header in ["", "sha256=00ff", "t=1", "v1=00", "t=x,v1=00", "t=1,v1=zz"] {
            assert_eq!(
                verify(b"secret", b"{}", header, NOW),
                Err(SignatureError::Malformed),
                "{header}"
            );
        }
    }
}
