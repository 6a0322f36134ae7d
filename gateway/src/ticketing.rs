//! What the ticketing routes share: the show and booking buses, the booking saga (which
//! prices a booking from the Show aggregate and whose reserve step the booking route runs
//! inline), the ticket signer, and the short wait for a new session's seats to be opened
//! by the seat stock policy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ordo_aggregates::booking::Booking;
use ordo_aggregates::common::{Currency, SessionId, TicketId};
use ordo_aggregates::inventory::InventoryItem;
use ordo_aggregates::show::{seat_inventory_id, SeatArea, Show};
use ordo_identity::tickets::TicketSigner;
use ordo_sagas::BookingSaga;
use ordo_store::CommandBus;

/// How long adding a session waits for the seat stock policy to open its seats before it
/// answers 202 instead of 201.
pub const SEATS_OPEN_WAIT: Duration = Duration::from_secs(5);

/// Settings of ticketing read from the environment.
#[derive(Debug, Clone)]
pub struct TicketingSettings {
    /// Most seats one booking may take.
    pub max_per_booking: u32,
    /// Key signing the tickets' QR payloads.
    pub ticket_secret: Vec<u8>,
    /// Base URL of this gateway, for absolute QR image links.
    pub public_url: String,
    /// Currency of a seat area whose request names none (`ORDO_DEFAULT_CURRENCY`).
    pub default_currency: Currency,
}

/// The ticketing side of the gateway.
pub struct Ticketing {
    /// Shows and their sessions.
    pub shows: Arc<CommandBus<Show>>,
    /// Bookings.
    pub bookings: Arc<CommandBus<Booking>>,
    /// The booking saga, for its pricing and its reserve step.
    pub saga: Arc<BookingSaga>,
    /// Settings.
    pub settings: TicketingSettings,
    /// Signs and checks the tickets' QR payloads with the ticket key.
    pub signer: TicketSigner,
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
        }
    }

    /// The absolute URL of a ticket's QR image.
    pub fn qr_url(&self, ticket_id: TicketId) -> String {
        format!(
            "{}/api/v1/tickets/{ticket_id}/qr.png",
            self.settings.public_url.trim_end_matches('/')
        )
    }
}

/// Waits up to `wait` until the seat stock policy opened the inventory item of every seat
/// area of these sessions, as the write side has them. Answers whether they are all open.
pub async fn await_seats_open(
    inventory: &CommandBus<InventoryItem>,
    sessions: &[(SessionId, Vec<SeatArea>)],
    wait: Duration,
) -> anyhow::Result<bool> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(10);
    let mut waiting: Vec<String> = sessions
        .iter()
        .flat_map(|(session_id, areas)| {
            areas
                .iter()
                .map(|area| seat_inventory_id(*session_id, &area.area_id).to_string())
        })
        .collect();
    loop {
        let mut still = Vec::new();
        for item in waiting {
            let (seats, _) = inventory
                .load(&item)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if seats.sku().is_none() {
                still.push(item);
            }
        }
        if still.is_empty() {
            return Ok(true);
        }
        if started.elapsed() >= wait {
            return Ok(false);
        }
        waiting = still;
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}
