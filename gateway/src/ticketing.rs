//! What the ticketing routes share: the show and booking buses, the booking saga (whose
//! reserve step the booking route runs inline), the ticket signing key, and a short-lived
//! cache of seat area prices so that a flash sale does not read the catalog once per fan.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use ordo_aggregates::booking::Booking;
use ordo_aggregates::common::{AreaId, BookingId, Currency, Money, SessionId, ShowId, TicketId};
use ordo_aggregates::show::Show;
use ordo_sagas::BookingSaga;
use ordo_store::CommandBus;
use sha2::Sha256;
use sqlx::PgPool;

/// How long a seat area's price is served from memory before the catalog is read again.
const AREA_CACHE_TTL: Duration = Duration::from_secs(2);

/// Settings of ticketing read from the environment.
#[derive(Debug, Clone)]
pub struct TicketingSettings {
    /// Most seats one booking may take.
    pub max_per_booking: u32,
    /// Key signing the tickets' QR payloads.
    pub ticket_secret: Vec<u8>,
    /// Base URL of this gateway, for absolute QR image links.
    pub public_url: String,
}

/// The ticketing side of the gateway.
pub struct Ticketing {
    /// Shows and their sessions.
    pub shows: Arc<CommandBus<Show>>,
    /// Bookings.
    pub bookings: Arc<CommandBus<Booking>>,
    /// The booking saga, for its reserve step.
    pub saga: Arc<BookingSaga>,
    /// Settings.
    pub settings: TicketingSettings,
    areas: Mutex<HashMap<(SessionId, AreaId), (Instant, SeatAreaInfo)>>,
}

/// What a booking needs to know of its seat area.
#[derive(Debug, Clone)]
pub struct SeatAreaInfo {
    /// The show.
    pub show_id: ShowId,
    /// Price of one seat.
    pub price: Money,
}

/// A QR payload that passed the signature check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedTicket {
    /// The ticket.
    pub ticket_id: TicketId,
    /// Its booking.
    pub booking_id: BookingId,
    /// Its session.
    pub session_id: SessionId,
}

impl Ticketing {
    /// Ticketing over these buses and saga.
    pub fn new(
        shows: Arc<CommandBus<Show>>,
        bookings: Arc<CommandBus<Booking>>,
        saga: Arc<BookingSaga>,
        settings: TicketingSettings,
    ) -> Self {
        Self {
            shows,
            bookings,
            saga,
            settings,
            areas: Mutex::new(HashMap::new()),
        }
    }

    /// The show and price of a seat area from the catalog read model, `None` when the
    /// session or area is unknown.
    pub async fn seat_area(
        &self,
        pool: &PgPool,
        session_id: SessionId,
        area_id: &AreaId,
    ) -> anyhow::Result<Option<SeatAreaInfo>> {
        let key = (session_id, area_id.clone());
        if let Some((at, info)) = self.areas.lock().expect("area cache").get(&key) {
            if at.elapsed() < AREA_CACHE_TTL {
                return Ok(Some(info.clone()));
            }
        }
        let row: Option<(uuid::Uuid, i64, String)> = sqlx::query_as(
            "SELECT show_id, price_minor, currency FROM seat_areas
             WHERE session_id = $1 AND area_id = $2",
        )
        .bind(session_id.as_uuid())
        .bind(area_id.as_str())
        .fetch_optional(pool)
        .await?;
        let Some((show_id, price_minor, currency)) = row else {
            return Ok(None);
        };
        let info = SeatAreaInfo {
            show_id: ShowId::from(show_id),
            price: Money::new(price_minor, Currency::parse(&currency)?)?,
        };
        let mut areas = self.areas.lock().expect("area cache");
        if areas.len() > 10_000 {
            areas.retain(|_, (at, _)| at.elapsed() < AREA_CACHE_TTL);
        }
        areas.insert(key, (Instant::now(), info.clone()));
        Ok(Some(info))
    }

    fn mac(
        &self,
        ticket_id: TicketId,
        booking_id: BookingId,
        session_id: SessionId,
    ) -> Hmac<Sha256> {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.settings.ticket_secret).expect("any key length");
        mac.update(format!("{ticket_id}|{booking_id}|{session_id}").as_bytes());
        mac
    }

    /// The payload a ticket's QR code carries: `ticket_id|booking_id|session_id|signature`,
    /// the signature being HMAC-SHA256 of the first three fields, in hex.
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

    /// The absolute URL of a ticket's QR image.
    pub fn qr_url(&self, ticket_id: TicketId) -> String {
        format!(
            "{}/api/v1/tickets/{ticket_id}/qr.png",
            self.settings.public_url.trim_end_matches('/')
        )
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

    #[test]
    fn qr_png_is_a_png() {
        let png = qr_png("a|b|c|d").unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
}
