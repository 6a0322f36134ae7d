//! What the ticketing routes share: the show and booking buses, the booking saga (whose
//! reserve step the booking route runs inline), the ticket signer, and a short-lived
//! cache of seat area prices so that a flash sale does not read the catalog once per fan.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ordo_aggregates::booking::Booking;
use ordo_aggregates::common::{AreaId, Currency, Money, SessionId, ShowId, TicketId};
use ordo_aggregates::show::Show;
use ordo_identity::tickets::TicketSigner;
use ordo_sagas::BookingSaga;
use ordo_store::CommandBus;
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
    /// Signs and checks the tickets' QR payloads with the ticket key.
    pub signer: TicketSigner,
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
            signer: TicketSigner::new(&settings.ticket_secret),
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

    /// The absolute URL of a ticket's QR image.
    pub fn qr_url(&self, ticket_id: TicketId) -> String {
        format!(
            "{}/api/v1/tickets/{ticket_id}/qr.png",
            self.settings.public_url.trim_end_matches('/')
        )
    }
}
