//! Ticket credentials: the HMAC-signed payload a ticket's QR code carries, its check at the
//! entrance, and the QR image itself.
//!
//! A payload reads `ticket_id|booking_id|session_id|signature`, the signature being
//! HMAC-SHA256 of the first three fields under the ticket key, in hex. Anyone holding the
//! key can issue tickets, so every instance must share it and nobody else may see it.

use std::fmt;

use hmac::{Hmac, Mac};
use ordo_aggregates::common::{BookingId, SessionId, TicketId};
use sha2::Sha256;

/// A QR payload whose signature checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedTicket {
    /// The ticket.
    pub ticket_id: TicketId,
    /// Its booking.
    pub booking_id: BookingId,
    /// Its session.
    pub session_id: SessionId,
}

/// Signs and checks ticket payloads with one key.
#[derive(Clone)]
pub struct TicketSigner {
    key: Vec<u8>,
}

impl fmt::Debug for TicketSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TicketSigner(<redacted>)")
    }
}

impl TicketSigner {
    /// A signer with this key (HMAC takes keys of any length; callers decide the minimum).
    pub fn new(key: &[u8]) -> Self {
        TicketSigner { key: key.to_vec() }
    }

    fn mac(
        &self,
        ticket_id: TicketId,
        booking_id: BookingId,
        session_id: SessionId,
    ) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(format!("{ticket_id}|{booking_id}|{session_id}").as_bytes());
        mac
    }

    /// The signed payload of a ticket's QR code.
    pub fn qr_payload(
        &self,
        ticket_id: TicketId,
        booking_id: BookingId,
        session_id: SessionId,
    ) -> String {
        let signature = hex::encode(
            self.mac(ticket_id, booking_id, session_id)
                .finalize()
                .into_bytes(),
        );
        format!("{ticket_id}|{booking_id}|{session_id}|{signature}")
    }

    /// Checks a scanned payload; `None` when it is malformed or its signature is wrong.
    pub fn verify(&self, payload: &str) -> Option<SignedTicket> {
        let mut parts = payload.trim().split('|');
        let ticket_id: TicketId = parts.next()?.parse().ok()?;
        let booking_id: BookingId = parts.next()?.parse().ok()?;
        let session_id: SessionId = parts.next()?.parse().ok()?;
        let signature = hex::decode(parts.next()?).ok()?;
        if parts.next().is_some() {
            return None;
        }
        // verify_slice compares in constant time.
        self.mac(ticket_id, booking_id, session_id)
            .verify_slice(&signature)
            .ok()?;
        Some(SignedTicket {
            ticket_id,
            booking_id,
            session_id,
        })
    }
}

/// Renders `payload` as a QR code in a grayscale PNG (4 pixels per module, quiet zone
/// included).
pub fn qr_png(payload: &str) -> anyhow::Result<Vec<u8>> {
    const SCALE: usize = 4;
    const QUIET: usize = 4;
    let code = qrcode::QrCode::new(payload.as_bytes())?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for y in 0..modules {
        for x in 0..modules {
            if colors[y * modules + x] == qrcode::Color::Dark {
                for dy in 0..SCALE {
                    let row = (y + QUIET) * SCALE + dy;
                    let start = row * side + (x + QUIET) * SCALE;
                    pixels[start..start + SCALE].fill(0);
                }
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, side as u32, side as u32);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&pixels)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (TicketId, BookingId, SessionId) {
        (
            TicketId::from(uuid::Uuid::new_v4()),
            BookingId::from(uuid::Uuid::new_v4()),
            SessionId::from(uuid::Uuid::new_v4()),
        )
    }

    #[test]
    fn a_signed_payload_verifies_to_its_ids() {
        let signer = TicketSigner::new(b"a ticket key of some length");
        let (ticket, booking, session) = ids();
        let payload = signer.qr_payload(ticket, booking, session);
        assert_eq!(
            signer.verify(&payload),
            Some(SignedTicket {
                ticket_id: ticket,
                booking_id: booking,
                session_id: session,
            })
        );
    }

    #[test]
    fn payloads_of_another_key_or_altered_are_refused() {
        let signer = TicketSigner::new(b"a ticket key of some length");
        let (ticket, booking, session) = ids();
        let foreign = TicketSigner::new(b"another key").qr_payload(ticket, booking, session);
        assert_eq!(signer.verify(&foreign), None);

        let payload = signer.qr_payload(ticket, booking, session);
        let (_, rest) = payload.split_once('|').unwrap();
        let other_ticket = format!("{}|{rest}", TicketId::from(uuid::Uuid::new_v4()));
        assert_eq!(signer.verify(&other_ticket), None);
        assert_eq!(signer.verify(&format!("{payload}|extra")), None);
        assert_eq!(signer.verify("not a ticket"), None);
    }

    #[test]
    fn qr_png_is_a_png() {
        let png = qr_png("a|b|c|d").unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
}
