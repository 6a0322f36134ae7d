//! The ticketing read models: `shows`, `show_sessions` and `seat_areas` from the show
//! stream (typed columns for browsing by city, category and text), and `bookings` with
//! their `tickets` from the booking stream.

use async_trait::async_trait;
use ordo_aggregates::booking::BookingEvent;
use ordo_aggregates::show::{seat_inventory_id, ShowEvent};
use ordo_contracts::{BookingMessage, ShowMessage};
use ordo_nats::envelope::ReceivedEvent;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::worker::Projection;

/// Builds `shows`, `show_sessions` and `seat_areas` from the show stream.
pub struct ShowsProjection;

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
        let ShowMessage { id, event, facts } = ordo_contracts::show(event)?;
        let show_id = *id.as_uuid();
        // (title, category, city, venue, description): what a creation sets, or an update changes.
        let fields = match event {
            ShowEvent::ShowCreated {
                title,
                category,
                city,
                venue,
                description,
                ..
            } => Some([
                Some(String::from(title)),
                Some(String::from(category)),
                Some(String::from(city)),
                Some(String::from(venue)),
                Some(String::from(description)),
            ]),
            ShowEvent::ShowUpdated {
                title,
                category,
                city,
                venue,
                description,
            } => Some([
                title.map(String::from),
                category.map(String::from),
                city.map(String::from),
                venue.map(String::from),
                description.map(String::from),
            ]),
            ShowEvent::SessionAdded {
                session_id,
                starts_at,
                seat_areas,
            } => {
                sqlx::query(
                    "INSERT INTO show_sessions (session_id, show_id, starts_at) VALUES ($1, $2, $3)
                     ON CONFLICT (session_id) DO NOTHING",
                )
                .bind(session_id.as_uuid())
                .bind(show_id)
                .bind(starts_at)
                .execute(&mut *tx)
                .await?;
                for (position, area) in seat_areas.iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO seat_areas (session_id, area_id, show_id, position, name,
                                                 price_minor, currency, capacity, inventory_id)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                         ON CONFLICT (session_id, area_id) DO NOTHING",
                    )
                    .bind(session_id.as_uuid())
                    .bind(area.area_id.as_str())
                    .bind(show_id)
                    .bind(position as i32)
                    .bind(area.name.as_str())
                    .bind(area.price.amount_minor())
                    .bind(area.price.currency().as_str())
                    .bind(i32::try_from(area.capacity)?)
                    .bind(seat_inventory_id(session_id, &area.area_id).as_str())
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
                .bind(facts.recorded_at)
                .bind(facts.sequence)
                .execute(&mut *tx)
                .await?;
                None
            }
            ShowEvent::SeatAreaChanged {
                session_id,
                area_id,
                name,
                price,
                capacity,
            } => {
                let capacity = capacity.map(i32::try_from).transpose()?;
                sqlx::query(
                    "UPDATE seat_areas SET name = coalesce($3, name),
                        price_minor = coalesce($4, price_minor),
                        currency = coalesce($5, currency),
                        capacity = coalesce($6, capacity)
                     WHERE session_id = $1 AND area_id = $2",
                )
                .bind(session_id.as_uuid())
                .bind(area_id.as_str())
                .bind(name.map(String::from))
                .bind(price.as_ref().map(|p| p.amount_minor()))
                .bind(price.as_ref().map(|p| p.currency().as_str().to_string()))
                .bind(capacity)
                .execute(&mut *tx)
                .await?;
                None
            }
        };
        if let Some([title, category, city, venue, description]) = fields {
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
            .bind(title)
            .bind(category)
            .bind(city)
            .bind(venue)
            .bind(description)
            .bind(facts.recorded_at)
            .bind(facts.sequence)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }
}

/// Builds `bookings` and `tickets` from the booking stream.
pub struct BookingsProjection;

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
        let BookingMessage { id, event, facts } = ordo_contracts::booking(event)?;
        let booking_id = *id.as_uuid();
        // (status, the reason a closing event gives)
        let (status, reason) = match event {
            BookingEvent::BookingRequested {
                booking_id,
                customer_id,
                show_id,
                session_id,
                area_id,
                quantity,
                total,
                ..
            } => {
                sqlx::query(
                    "INSERT INTO bookings (booking_id, customer_id, show_id, session_id, area_id,
                        quantity, total_minor, currency, status, requested_at, updated_at, version)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9, $9, $10)
                     ON CONFLICT (booking_id) DO NOTHING",
                )
                .bind(booking_id.as_uuid())
                .bind(customer_id.as_uuid())
                .bind(show_id.as_uuid())
                .bind(session_id.as_uuid())
                .bind(area_id.as_str())
                .bind(i32::try_from(quantity)?)
                .bind(total.amount_minor())
                .bind(total.currency().as_str())
                .bind(facts.recorded_at)
                .bind(facts.sequence)
                .execute(&mut *tx)
                .await?;
                return Ok(());
            }
            BookingEvent::SeatsHeld { expires_at } => {
                sqlx::query("UPDATE bookings SET expires_at = $2 WHERE booking_id = $1")
                    .bind(booking_id)
                    .bind(expires_at)
                    .execute(&mut *tx)
                    .await?;
                ("pending_payment", None)
            }
            BookingEvent::PaymentAttached { payment_id } => {
                sqlx::query("UPDATE bookings SET payment_id = $2 WHERE booking_id = $1")
                    .bind(booking_id)
                    .bind(payment_id.as_uuid())
                    .execute(&mut *tx)
                    .await?;
                ("pending_payment", None)
            }
            BookingEvent::BookingPaid {
                payment_id,
                tickets,
            } => {
                sqlx::query("UPDATE bookings SET payment_id = $2 WHERE booking_id = $1")
                    .bind(booking_id)
                    .bind(payment_id.as_uuid())
                    .execute(&mut *tx)
                    .await?;
                for (position, ticket) in tickets.iter().enumerate() {
                    sqlx::query(
                        "INSERT INTO tickets (ticket_id, booking_id, position, session_id, customer_id)
                         SELECT $1, booking_id, $2, session_id, customer_id FROM bookings
                         WHERE booking_id = $3
                         ON CONFLICT (ticket_id) DO NOTHING",
                    )
                    .bind(ticket.as_uuid())
                    .bind(position as i32)
                    .bind(booking_id)
                    .execute(&mut *tx)
                    .await?;
                }
                ("paid", None)
            }
            BookingEvent::TicketCheckedIn { ticket_id } => {
                sqlx::query("UPDATE tickets SET checked_in_at = $2 WHERE ticket_id = $1")
                    .bind(ticket_id.as_uuid())
                    .bind(facts.recorded_at)
                    .execute(&mut *tx)
                    .await?;
                ("paid", None)
            }
            BookingEvent::BookingRejected { reason } => ("rejected", Some(reason)),
            BookingEvent::BookingCancelled { reason } => ("cancelled", Some(reason)),
            BookingEvent::BookingExpired {} => ("expired", None),
            BookingEvent::BookingRefunded { reason } => {
                // An admin's refund approves an open request.
                sqlx::query(
                    "UPDATE bookings SET refund_request = 'approved'
                     WHERE booking_id = $1 AND refund_request = 'requested'",
                )
                .bind(booking_id)
                .execute(&mut *tx)
                .await?;
                ("refunded", Some(reason))
            }
            BookingEvent::BookingCompleted {} => ("completed", None),
            // A refund request leaves the booking paid until an admin approves it.
            BookingEvent::BookingRefundRequested { reason } => {
                refund_request(&mut *tx, booking_id, "requested", Some(reason)).await?;
                ("paid", None)
            }
            BookingEvent::BookingRefundRequestWithdrawn {} => {
                refund_request(&mut *tx, booking_id, "withdrawn", None).await?;
                ("paid", None)
            }
            BookingEvent::BookingRefundRequestRejected { .. } => {
                refund_request(&mut *tx, booking_id, "rejected", None).await?;
                ("paid", None)
            }
        };
        sqlx::query(
            "UPDATE bookings SET status = $2, reason = coalesce($3, reason), updated_at = $4,
                version = $5
             WHERE booking_id = $1",
        )
        .bind(booking_id)
        .bind(status)
        .bind(reason)
        .bind(facts.recorded_at)
        .bind(facts.sequence)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

/// Records where the booking's latest refund request stands (and its reason, when asked).
async fn refund_request(
    tx: &mut PgConnection,
    booking_id: Uuid,
    status: &str,
    reason: Option<String>,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE bookings SET refund_request = $2,
            refund_request_reason = coalesce($3, refund_request_reason)
         WHERE booking_id = $1",
    )
    .bind(booking_id)
    .bind(status)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
