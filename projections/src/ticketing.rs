//! The ticketing read models: `shows`, `show_sessions` and `seat_areas` from the show
//! stream (typed columns for browsing by city, category and text), and `bookings` with
//! their `tickets` from the booking stream.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ordo_aggregates::common::{AreaId, Money, SessionId};
use ordo_aggregates::show::seat_inventory_id;
use ordo_nats::envelope::ReceivedEvent;
use serde::Deserialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::worker::Projection;

/// Builds `shows`, `show_sessions` and `seat_areas` from the show stream.
pub struct ShowsProjection;

#[derive(Deserialize)]
struct ShowFields {
    title: Option<String>,
    category: Option<String>,
    city: Option<String>,
    venue: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
struct AreaPayload {
    area_id: AreaId,
    name: String,
    price: Money,
    capacity: i32,
}

#[derive(Deserialize)]
struct SessionAdded {
    session_id: SessionId,
    starts_at: DateTime<Utc>,
    seat_areas: Vec<AreaPayload>,
}

#[derive(Deserialize)]
struct AreaChanged {
    session_id: Uuid,
    area_id: String,
    name: Option<String>,
    price: Option<Money>,
    capacity: Option<i32>,
}

#[async_trait]
impl Projection for ShowsProjection {
    fn name(&self) -> &'static str {
        "projection-shows"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["shows", "show_sessions", "seat_areas"]
    }

    fn aggregate_type(&self) -> &'static str {
        "show"
    }

    async fn apply(&self, tx: &mut PgConnection, event: &ReceivedEvent) -> anyhow::Result<()> {
        let show_id: Uuid = event.aggregate_id.parse()?;
        match event.event_type.as_str() {
            "ShowCreated" | "ShowUpdated" => {
                let f: ShowFields = serde_json::from_value(event.payload.clone())?;
                sqlx::query(
                    "INSERT INTO shows (show_id, title, category, city, venue, description,
                                        created_at, updated_at, version)
                     VALUES ($1, coalesce($2, ''), coalesce($3, ''), coalesce($4, ''),
                             coalesce($5, ''), coalesce($6, ''), $7, $7, $8)
                     ON CONFLICT (show_id) DO UPDATE SET
                        title = coalesce($2, shows.title),
                        category = coalesce($3, shows.category),
                        city = coalesce($4, shows.city),
                        venue = coalesce($5, shows.venue),
                        description = coalesce($6, shows.description),
                        updated_at = $7, version = $8",
                )
                .bind(show_id)
                .bind(f.title)
                .bind(f.category)
                .bind(f.city)
                .bind(f.venue)
                .bind(f.description)
                .bind(event.recorded_at)
                .bind(event.sequence)
                .execute(&mut *tx)
                .await?;
            }
            "SessionAdded" => {
                let added: SessionAdded = serde_json::from_value(event.payload.clone())?;
                sqlx::query(
                    "INSERT INTO show_sessions (session_id, show_id, starts_at) VALUES ($1, $2, $3)
                     ON CONFLICT (session_id) DO NOTHING",
                )
                .bind(added.session_id.as_uuid())
                .bind(show_id)
                .bind(added.starts_at)
                .execute(&mut *tx)
                .await?;
                for (position, area) in added.seat_areas.iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO seat_areas (session_id, area_id, show_id, position, name,
                                                 price_minor, currency, capacity, inventory_id)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                         ON CONFLICT (session_id, area_id) DO NOTHING",
                    )
                    .bind(added.session_id.as_uuid())
                    .bind(area.area_id.as_str())
                    .bind(show_id)
                    .bind(position as i32)
                    .bind(&area.name)
                    .bind(area.price.amount_minor())
                    .bind(area.price.currency().as_str())
                    .bind(area.capacity)
                    .bind(seat_inventory_id(added.session_id, &area.area_id).as_str())
                    .execute(&mut *tx)
                    .await?;
                }
                sqlx::query(
                    "UPDATE shows SET first_session_at =
                        (SELECT min(starts_at) FROM show_sessions WHERE show_id = $1),
                        updated_at = $2, version = $3
                     WHERE show_id = $1",
                )
                .bind(show_id)
                .bind(event.recorded_at)
                .bind(event.sequence)
                .execute(&mut *tx)
                .await?;
            }
            "SeatAreaChanged" => {
                let c: AreaChanged = serde_json::from_value(event.payload.clone())?;
                sqlx::query(
                    "UPDATE seat_areas SET name = coalesce($3, name),
                        price_minor = coalesce($4, price_minor),
                        currency = coalesce($5, currency),
                        capacity = coalesce($6, capacity)
                     WHERE session_id = $1 AND area_id = $2",
                )
                .bind(c.session_id)
                .bind(&c.area_id)
                .bind(c.name)
                .bind(c.price.as_ref().map(|p| p.amount_minor()))
                .bind(c.price.as_ref().map(|p| p.currency().as_str().to_string()))
                .bind(c.capacity)
                .execute(&mut *tx)
                .await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Builds `bookings` and `tickets` from the booking stream.
pub struct BookingsProjection;

#[derive(Deserialize)]
struct Requested {
    booking_id: Uuid,
    customer_id: Uuid,
    show_id: Uuid,
    session_id: Uuid,
    area_id: String,
    quantity: i32,
    total: Money,
}

#[derive(Deserialize)]
struct Reasoned {
    reason: Option<String>,
}

#[derive(Deserialize)]
struct Paid {
    payment_id: Uuid,
    tickets: Vec<Uuid>,
}

#[async_trait]
impl Projection for BookingsProjection {
    fn name(&self) -> &'static str {
        "projection-bookings"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["bookings", "tickets"]
    }

    fn aggregate_type(&self) -> &'static str {
        "booking"
    }

    async fn apply(&self, tx: &mut PgConnection, event: &ReceivedEvent) -> anyhow::Result<()> {
        let booking_id: Uuid = event.aggregate_id.parse()?;
        let status = match event.event_type.as_str() {
            "BookingRequested" => {
                let r: Requested = serde_json::from_value(event.payload.clone())?;
                sqlx::query(
                    "INSERT INTO bookings (booking_id, customer_id, show_id, session_id, area_id,
                        quantity, total_minor, currency, status, requested_at, updated_at, version)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $9, $10)
                     ON CONFLICT (booking_id) DO NOTHING",
                )
                .bind(r.booking_id)
                .bind(r.customer_id)
                .bind(r.show_id)
                .bind(r.session_id)
                .bind(&r.area_id)
                .bind(r.quantity)
                .bind(r.total.amount_minor())
                .bind(r.total.currency().as_str())
                .bind(event.recorded_at)
                .bind(event.sequence)
                .execute(&mut *tx)
                .await?;
                return Ok(());
            }
            "SeatsHeld" => {
                #[derive(Deserialize)]
                struct Held {
                    expires_at: DateTime<Utc>,
                }
                let held: Held = serde_json::from_value(event.payload.clone())?;
                sqlx::query("UPDATE bookings SET expires_at = $2 WHERE booking_id = $1")
                    .bind(booking_id)
                    .bind(held.expires_at)
                    .execute(&mut *tx)
                    .await?;
                "pending_payment"
            }
            "PaymentAttached" => {
                #[derive(Deserialize)]
                struct Attached {
                    payment_id: Uuid,
                }
                let a: Attached = serde_json::from_value(event.payload.clone())?;
                sqlx::query("UPDATE bookings SET payment_id = $2 WHERE booking_id = $1")
                    .bind(booking_id)
                    .bind(a.payment_id)
                    .execute(&mut *tx)
                    .await?;
                "pending_payment"
            }
            "BookingPaid" => {
                let paid: Paid = serde_json::from_value(event.payload.clone())?;
                sqlx::query("UPDATE bookings SET payment_id = $2 WHERE booking_id = $1")
                    .bind(booking_id)
                    .bind(paid.payment_id)
                    .execute(&mut *tx)
                    .await?;
                for (position, ticket) in paid.tickets.iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO tickets (ticket_id, booking_id, position, session_id, customer_id)
                         SELECT $1, booking_id, $2, session_id, customer_id FROM bookings
                         WHERE booking_id = $3
                         ON CONFLICT (ticket_id) DO NOTHING",
                    )
                    .bind(ticket)
                    .bind(position as i32)
                    .bind(booking_id)
                    .execute(&mut *tx)
                    .await?;
                }
                "paid"
            }
            "TicketCheckedIn" => {
                #[derive(Deserialize)]
                struct CheckedIn {
                    ticket_id: Uuid,
                }
                let c: CheckedIn = serde_json::from_value(event.payload.clone())?;
                sqlx::query("UPDATE tickets SET checked_in_at = $2 WHERE ticket_id = $1")
                    .bind(c.ticket_id)
                    .bind(event.recorded_at)
                    .execute(&mut *tx)
                    .await?;
                "paid"
            }
            "BookingRejected" => "rejected",
            "BookingCancelled" => "cancelled",
            "BookingExpired" => "expired",
            "BookingRefunded" => "refunded",
            "BookingCompleted" => "completed",
            _ => return Ok(()),
        };
        let reason = serde_json::from_value::<Reasoned>(event.payload.clone())
            .ok()
            .and_then(|r| r.reason);
        sqlx::query(
            "UPDATE bookings SET status = $2, reason = coalesce($3, reason), updated_at = $4,
                version = $5
             WHERE booking_id = $1",
        )
        .bind(booking_id)
        .bind(status)
        .bind(reason)
        .bind(event.recorded_at)
        .bind(event.sequence)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}
