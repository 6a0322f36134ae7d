//! The notifications reactor: each user's inbox, fed by the order, payment and
//! booking streams, and an email copy of every entry through a [`MailSender`].
//!
//! One [`NotificationsHandler`] runs per stream (`notifications-orders`,
//! `notifications-payments`, `notifications-bookings`, `notifications-inventory`). Each claims the event and writes the
//! inbox entry in one transaction, so a redelivered event never adds a second entry; the
//! entry's id is derived from the event id, which makes that true even across a rebuild.
//! The email goes out after the commit: a crash in between leaves `mailed_at` empty, and the
//! redelivery of the same event (answered "already applied") sends it then. Mail is thus at
//! least once, and the spool file is named by the notification id, so a repeat overwrites
//! the same file instead of adding one.
//!
//! The inventory stream tells the admins: a SKU falling below its safety threshold
//! (`StockBelowThreshold`, once per crossing) adds an entry to every admin's inbox, its id
//! derived from the event's and the admin's, so a redelivery adds none. A fan's refund
//! request of a booking (`BookingRefundRequested`) reaches every admin's inbox the same way.
//!
//! Later events of an aggregate do not name its customer, so the first one
//! (`OrderPlaced`, `PaymentCreated`, `BookingRequested`) records the recipient in
//! `notification_recipients`; per-aggregate order (the claim) guarantees it is there first.
//!
//! The handlers insert concurrently; a trigger (migration 0040) numbers each user's entries
//! in commit order by serialising that user's inserts, which is what lets an SSE client
//! resume after the last entry it saw (see [`crate::inbox`]).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use ordo_aggregates::booking::BookingEvent;
use ordo_aggregates::common::Money;
use ordo_aggregates::inventory::InventoryEvent;
use ordo_aggregates::order::OrderEvent;
use ordo_aggregates::payment::PaymentEvent;
use ordo_contracts::{
    BookingMessage, ContractError, Decoded, InventoryMessage, OrderMessage, PaymentMessage,
};
use ordo_nats::applied::{claim, Claim};
use ordo_nats::consumer::{EventHandler, HandlerError};
use ordo_nats::envelope::ReceivedEvent;
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::mail::{MailMessage, MailSender};

/// The consumers of the three streams, as `(durable name, aggregate type)`.
pub const NOTIFICATION_CONSUMERS: &[(&str, &str)] = &[
    ("notifications-orders", "order"),
    ("notifications-payments", "payment"),
    ("notifications-bookings", "booking"),
    ("notifications-inventory", "inventory"),
];

/// The Postgres channel a new inbox entry is announced on (see migration 0030).
pub const NOTIFY_CHANNEL: &str = "ordo_notifications";

/// Namespace of notification ids: the id is the UUIDv5 of the causing event's id.
const NOTIFICATION_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6e6f_7469_6669_4e0a_8b1e_6f72_646f_6e74);

/// The id of the notification an event produces (if it produces one).
pub fn notification_id(event_id: Uuid) -> Uuid {
    Uuid::new_v5(&NOTIFICATION_ID_NAMESPACE, event_id.as_bytes())
}

/// What an event adds to the inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// Stable code, e.g. `order_confirmed`.
    pub kind: &'static str,
    /// Short title.
    pub title: String,
    /// One or two sentences.
    pub body: String,
    /// Ids and values a client needs to link the entry.
    pub data: Value,
}

/// The recipient recorded by an aggregate's first event.
#[derive(Debug, Clone)]
struct Recipient {
    user_id: Uuid,
    data: Value,
}

/// An event of one of the three streams, decoded by its stream's contract.
#[derive(Debug, Clone)]
pub enum NotifiedEvent {
    /// From the order stream.
    Order(OrderMessage),
    /// From the payment stream.
    Payment(PaymentMessage),
    /// From the booking stream.
    Booking(BookingMessage),
    /// From the inventory stream.
    Inventory(InventoryMessage),
}

impl NotifiedEvent {
    /// Decodes `event` through the contract of its stream (an event of any other stream is
    /// refused by the order stream's).
    pub fn decode(event: &ReceivedEvent) -> Result<Self, ContractError> {
        Ok(match event.aggregate_type.as_str() {
            "payment" => Self::Payment(ordo_contracts::payment(event)?),
            "booking" => Self::Booking(ordo_contracts::booking(event)?),
            "inventory" => Self::Inventory(ordo_contracts::inventory(event)?),
            _ => Self::Order(ordo_contracts::order(event)?),
        })
    }
}

/// `1234 EUR` -> `12.34 EUR` (zero-decimal currencies as they are).
pub fn format_money(amount_minor: i64, currency: &str) -> String {
    if matches!(currency, "JPY" | "KRW" | "CLP" | "ISK" | "VND") {
        return format!("{amount_minor} {currency}");
    }
    format!(
        "{}.{:02} {currency}",
        amount_minor / 100,
        amount_minor % 100
    )
}

fn money(m: &Money) -> String {
    format_money(m.amount_minor(), m.currency().as_str())
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// The recipient an aggregate's first event names, with data later notices reuse.
fn recipient_of(event: &NotifiedEvent) -> Option<Recipient> {
    match event {
        NotifiedEvent::Order(Decoded {
            event:
                OrderEvent::OrderPlaced {
                    order_id,
                    customer_id,
                    total,
                    ..
                },
            ..
        }) => Some(Recipient {
            user_id: *customer_id.as_uuid(),
            data: json!({"order_id": order_id, "total": money(total)}),
        }),
        NotifiedEvent::Payment(Decoded {
            event:
                PaymentEvent::PaymentCreated {
                    payment_id,
                    order_id,
                    customer_id,
                    amount,
                    ..
                },
            ..
        }) => Some(Recipient {
            user_id: *customer_id.as_uuid(),
            data: json!({"payment_id": payment_id, "order_id": order_id, "amount": money(amount)}),
        }),
        NotifiedEvent::Booking(Decoded {
            event:
                BookingEvent::BookingRequested {
                    booking_id,
                    customer_id,
                    show_id,
                    session_id,
                    quantity,
                    total,
                    ..
                },
            ..
        }) => Some(Recipient {
            user_id: *customer_id.as_uuid(),
            data: json!({"booking_id": booking_id, "show_id": show_id, "session_id": session_id,
                     "quantity": quantity, "total": money(total)}),
        }),
        _ => None,
    }
}

/// The inbox entry an event produces, given what its aggregate's first event recorded.
/// Pure, so the wording is tested without a database.
pub fn notice_for(event: &NotifiedEvent, context: &Value) -> Option<Notice> {
    let text = |key: &str| {
        context
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let mut data = context.clone();
    let notice = match event {
        NotifiedEvent::Order(Decoded { event, facts, .. }) => {
            let id = facts.aggregate_id.as_str();
            match event {
                OrderEvent::OrderConfirmed {} => Notice {
                    kind: "order_confirmed",
                    title: "Order confirmed".into(),
                    body: format!(
                        "Your order {} ({}) is confirmed: the goods are reserved for you. Please pay to complete it.",
                        short(id),
                        text("total")
                    ),
                    data,
                },
                OrderEvent::OrderRejected { reason, .. } => {
                    data["reason"] = json!(reason);
                    Notice {
                        kind: "order_rejected",
                        title: "Order rejected".into(),
                        body: format!("Sorry, your order {} could not be accepted: {reason}.", short(id)),
                        data,
                    }
                }
                OrderEvent::OrderShipped { shipment_id } => {
                    data["shipment_id"] = json!(shipment_id);
                    Notice {
                        kind: "order_shipped",
                        title: "Order shipped".into(),
                        body: format!(
                            "Your order {} is on its way: follow its tracking on the order page.",
                            short(id)
                        ),
                        data,
                    }
                }
                OrderEvent::OrderDelivered { delivered_at, .. } => {
                    data["delivered_at"] =
                        json!(delivered_at.to_rfc3339_opts(SecondsFormat::Secs, true));
                    Notice {
                        kind: "order_delivered",
                        title: "Order delivered".into(),
                        body: format!(
                            "Your order {} was delivered. Please confirm receipt, or tell us if anything is wrong.",
                            short(id)
                        ),
                        data,
                    }
                }
                OrderEvent::OrderPlaced { .. }
                | OrderEvent::PaymentAttached { .. }
                | OrderEvent::OrderPaid { .. }
                | OrderEvent::OrderCancelled { .. }
                | OrderEvent::OrderExpired {}
                | OrderEvent::OrderRefunded { .. }
                | OrderEvent::OrderCompleted { .. }
                | OrderEvent::AfterSaleUnitsClaimed { .. }
                | OrderEvent::AfterSaleUnitsReleased { .. } => return None,
            }
        }
        NotifiedEvent::Payment(Decoded { event, .. }) => match event {
            PaymentEvent::PaymentCaptured { amount, .. } => {
                let amount = money(amount);
                data["amount"] = json!(amount);
                Notice {
                    kind: "payment_captured",
                    title: "Payment received".into(),
                    body: format!(
                        "We received your payment of {amount} for order {}. Thank you!",
                        short(&text("order_id"))
                    ),
                    data,
                }
            }
            PaymentEvent::PaymentFailed { reason } => {
                data["reason"] = json!(reason);
                Notice {
                    kind: "payment_failed",
                    title: "Payment failed".into(),
                    body: format!("Your payment for order {} failed: {reason}. You may try again with another method.", short(&text("order_id"))),
                    data,
                }
            }
            PaymentEvent::PaymentRefunded { amount, reason, .. } => {
                let amount = money(amount);
                data["refunded"] = json!(amount);
                data["reason"] = json!(reason);
                Notice {
                    kind: "payment_refunded",
                    title: "Refund issued".into(),
                    body: format!(
                        "{amount} has been refunded for order {}.",
                        short(&text("order_id"))
                    ),
                    data,
                }
            }
            PaymentEvent::PaymentCreated { .. }
            | PaymentEvent::PaymentAuthorized { .. }
            | PaymentEvent::PaymentVoided { .. } => return None,
        },
        NotifiedEvent::Booking(Decoded { event, facts, .. }) => {
            let id = facts.aggregate_id.as_str();
            match event {
                BookingEvent::SeatsHeld { expires_at } => {
                    let expires = expires_at.to_rfc3339_opts(SecondsFormat::Secs, true);
                    data["expires_at"] = json!(expires);
                    Notice {
                        kind: "booking_pending_payment",
                        title: "Seats held: payment pending".into(),
                        body: format!(
                            "Your {} seat(s) are held for booking {} ({}): pay before {expires}, or they are released.",
                            context.get("quantity").and_then(Value::as_u64).unwrap_or(0),
                            short(id),
                            text("total")
                        ),
                        data,
                    }
                }
                BookingEvent::BookingPaid { tickets, .. } => {
                    data["tickets"] = json!(tickets);
                    Notice {
                        kind: "tickets_issued",
                        title: "Your tickets are ready".into(),
                        body: format!(
                            "Payment received: {} ticket(s) issued for booking {}.",
                            tickets.len(),
                            short(id)
                        ),
                        data,
                    }
                }
                BookingEvent::BookingExpired {} => Notice {
                    kind: "booking_expired",
                    title: "Booking expired".into(),
                    body: format!(
                        "Booking {} was not paid in time; the seats have been released.",
                        short(id)
                    ),
                    data,
                },
                BookingEvent::BookingRefunded { reason } => {
                    data["reason"] = json!(reason);
                    Notice {
                        kind: "booking_refunded",
                        title: "Booking refunded".into(),
                        body: format!(
                            "Booking {} was refunded ({}); its tickets no longer admit anyone. Reason: {reason}",
                            short(id),
                            text("total")
                        ),
                        data,
                    }
                }
                BookingEvent::BookingRefundRequestRejected { reason } => {
                    data["reason"] = json!(reason);
                    Notice {
                        kind: "booking_refund_rejected",
                        title: "Refund request rejected".into(),
                        body: format!(
                            "Your refund request for booking {} was rejected; your tickets stay valid. Reason: {reason}",
                            short(id)
                        ),
                        data,
                    }
                }
                BookingEvent::BookingRequested { .. }
                | BookingEvent::BookingRejected { .. }
                | BookingEvent::PaymentAttached { .. }
                | BookingEvent::BookingCancelled { .. }
                | BookingEvent::BookingCompleted {}
                | BookingEvent::BookingRefundRequested { .. }
                | BookingEvent::BookingRefundRequestWithdrawn {}
                | BookingEvent::TicketCheckedIn { .. } => return None,
            }
        }
        // Told to the admins (see [`admin_notice_for`]), not to a customer.
        NotifiedEvent::Inventory(_) => return None,
    };
    Some(notice)
}

/// The inbox entry every admin gets for an event, if any: a SKU below its safety
/// threshold. Pure, so the wording is tested without a database.
pub fn admin_notice_for(event: &NotifiedEvent) -> Option<Notice> {
    match event {
        NotifiedEvent::Inventory(Decoded {
            event:
                InventoryEvent::StockBelowThreshold {
                    sku,
                    available,
                    threshold,
                },
            ..
        }) => Some(Notice {
            kind: "stock_below_threshold",
            title: format!("Low stock: {sku}"),
            body: format!(
                "{sku} has {available} unit(s) available, below its safety threshold of {threshold}. Restock it soon."
            ),
            data: json!({"sku": sku, "available": available, "threshold": threshold}),
        }),
        NotifiedEvent::Booking(Decoded {
            event: BookingEvent::BookingRefundRequested { reason },
            facts,
            ..
        }) => {
            let id = facts.aggregate_id.as_str();
            Some(Notice {
                kind: "booking_refund_requested",
                title: "Refund requested".into(),
                body: format!(
                    "The owner of booking {} asks for a refund: {reason}. Approve or reject it.",
                    short(id)
                ),
                data: json!({"booking_id": id, "reason": reason}),
            })
        }
        _ => None,
    }
}

/// Runs one stream's notifications: claims each event, writes the inbox entry, then mails it.
pub struct NotificationsHandler {
    pool: PgPool,
    name: &'static str,
    aggregate_type: &'static str,
    mail: Arc<dyn MailSender>,
}

impl NotificationsHandler {
    /// The handler of consumer `name` reading `aggregate_type`'s stream.
    pub fn new(
        pool: PgPool,
        name: &'static str,
        aggregate_type: &'static str,
        mail: Arc<dyn MailSender>,
    ) -> Self {
        Self {
            pool,
            name,
            aggregate_type,
            mail,
        }
    }

    /// One handler per stream in [`NOTIFICATION_CONSUMERS`], sharing one mail sender.
    pub fn all(pool: PgPool, mail: Arc<dyn MailSender>) -> Vec<Arc<NotificationsHandler>> {
        NOTIFICATION_CONSUMERS
            .iter()
            .map(|(name, aggregate_type)| {
                Arc::new(Self::new(pool.clone(), name, aggregate_type, mail.clone()))
            })
            .collect()
    }

    /// The durable consumer name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The aggregate type whose stream it reads.
    pub fn aggregate_type(&self) -> &'static str {
        self.aggregate_type
    }

    async fn apply(&self, tx: &mut PgConnection, event: &ReceivedEvent) -> anyhow::Result<()> {
        let decoded = NotifiedEvent::decode(event)?;
        if let Some(notice) = admin_notice_for(&decoded) {
            // Every admin at the time the event is handled.
            let admins: Vec<Uuid> = sqlx::query_scalar(
                "SELECT user_id FROM users WHERE role = 'admin' ORDER BY user_id",
            )
            .fetch_all(&mut *tx)
            .await?;
            for admin in admins {
                sqlx::query(
                    "INSERT INTO notifications (notification_id, user_id, kind, title, body, data, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)
                     ON CONFLICT (notification_id) DO NOTHING",
                )
                .bind(Uuid::new_v5(&notification_id(event.event_id), admin.as_bytes()))
                .bind(admin)
                .bind(notice.kind)
                .bind(&notice.title)
                .bind(&notice.body)
                .bind(&notice.data)
                .bind(event.recorded_at)
                .execute(&mut *tx)
                .await?;
            }
            return Ok(());
        }
        if let NotifiedEvent::Inventory(_) = decoded {
            // Only admins hear of stock.
            return Ok(());
        }
        if let Some(recipient) = recipient_of(&decoded) {
            sqlx::query(
                "INSERT INTO notification_recipients (aggregate_type, aggregate_id, user_id, data)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (aggregate_type, aggregate_id) DO NOTHING",
            )
            .bind(&event.aggregate_type)
            .bind(&event.aggregate_id)
            .bind(recipient.user_id)
            .bind(&recipient.data)
            .execute(&mut *tx)
            .await?;
            return Ok(());
        }
        let found: Option<(Uuid, Value)> = sqlx::query_as(
            "SELECT user_id, data FROM notification_recipients
             WHERE aggregate_type = $1 AND aggregate_id = $2",
        )
        .bind(&event.aggregate_type)
        .bind(&event.aggregate_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((user_id, context)) = found else {
            // Only events after the first reach here, and the claim applies them in order,
            // so a missing recipient means history before this consumer existed: nothing
            // to tell anyone about.
            return Ok(());
        };
        let Some(notice) = notice_for(&decoded, &context) else {
            return Ok(());
        };
        sqlx::query(
            "INSERT INTO notifications (notification_id, user_id, kind, title, body, data, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (notification_id) DO NOTHING",
        )
        .bind(notification_id(event.event_id))
        .bind(user_id)
        .bind(notice.kind)
        .bind(&notice.title)
        .bind(&notice.body)
        .bind(&notice.data)
        .bind(event.recorded_at)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    /// Mails the event's notification if it exists and has not been mailed yet.
    async fn deliver_mail(&self, event: &ReceivedEvent) -> anyhow::Result<()> {
        let id = notification_id(event.event_id);
        let row: Option<(String, String, String, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT u.email, u.full_name, n.title, n.body, n.created_at
             FROM notifications n JOIN users u ON u.user_id = n.user_id
             WHERE n.notification_id = $1 AND n.mailed_at IS NULL",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let Some((to, to_name, subject, body, date)) = row else {
            return Ok(());
        };
        self.mail
            .send(&MailMessage {
                notification_id: id,
                to,
                to_name,
                subject,
                body,
                date,
            })
            .await?;
        sqlx::query("UPDATE notifications SET mailed_at = now() WHERE notification_id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl EventHandler for NotificationsHandler {
    async fn handle(&self, event: &ReceivedEvent) -> Result<(), HandlerError> {
        let mut tx = self.pool.begin().await?;
        match claim(&mut tx, self.name, event).await? {
            Claim::Apply => {
                self.apply(&mut tx, event).await.map_err(apply_failure)?;
                tx.commit().await?;
            }
            Claim::AlreadyApplied => tx.rollback().await?,
            Claim::Gap { expected } => {
                return Err(HandlerError::gap(event, expected));
            }
        }
        // After the commit, and on every redelivery, so a crash between the two still
        // sends the mail (the same file again at worst).
        self.deliver_mail(event).await.map_err(HandlerError::Retry)
    }
}

/// An event that does not decode fails as its contract says (an unknown type or version is
/// retried, then dead-lettered; a malformed one is dead-lettered at once); anything else is
/// retried.
fn apply_failure(err: anyhow::Error) -> HandlerError {
    match err.downcast::<ContractError>() {
        Ok(contract) => contract.into(),
        Err(err) => HandlerError::Retry(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::SpoolMailer;

    fn event(aggregate_type: &str, event_type: &str, payload: Value) -> ReceivedEvent {
        ReceivedEvent {
            stream: "ORDO_X".into(),
            stream_sequence: 1,
            subject: "ordo.events.x".into(),
            aggregate_type: aggregate_type.into(),
            aggregate_id: "0b0f4d9e-8d7a-4c55-9f1e-3c2b1a000001".into(),
            sequence: 2,
            event_type: event_type.into(),
            event_version: "1".into(),
            event_id: Uuid::new_v4(),
            correlation_id: "c".into(),
            causation_id: "c".into(),
            user_id: None,
            recorded_at: Utc::now(),
            payload,
            delivered: 1,
        }
    }

    fn notified(aggregate_type: &str, event_type: &str, payload: Value) -> NotifiedEvent {
        NotifiedEvent::decode(&event(aggregate_type, event_type, payload)).unwrap()
    }

    #[test]
    fn seats_held_warns_of_the_payment_deadline() {
        let context = json!({"quantity": 2, "total": "90.00 EUR"});
        let notice = notice_for(
            &notified(
                "booking",
                "SeatsHeld",
                json!({"expires_at": "2030-01-01T10:15:00Z"}),
            ),
            &context,
        )
        .unwrap();
        assert_eq!(notice.kind, "booking_pending_payment");
        assert!(
            notice.body.contains("pay before 2030-01-01T10:15:00Z"),
            "{}",
            notice.body
        );
        assert_eq!(notice.data["expires_at"], "2030-01-01T10:15:00Z");
    }

    #[test]
    fn events_without_news_produce_no_notice() {
        let id = "0b0f4d9e-8d7a-4c55-9f1e-3c2b1a000009";
        for (t, e, payload) in [
            ("order", "PaymentAttached", json!({"payment_id": id})),
            (
                "payment",
                "PaymentAuthorized",
                json!({"provider_ref": "p-1"}),
            ),
            ("booking", "TicketCheckedIn", json!({"ticket_id": id})),
        ] {
            assert!(notice_for(&notified(t, e, payload), &json!({})).is_none());
        }
    }

    #[test]
    fn an_event_of_another_stream_does_not_decode() {
        let err = NotifiedEvent::decode(&event("show", "ShowCreated", json!({}))).unwrap_err();
        assert!(matches!(err, ContractError::WrongStream { .. }), "{err}");
    }

    #[test]
    fn notification_ids_follow_the_event_id() {
        let id = Uuid::new_v4();
        assert_eq!(notification_id(id), notification_id(id));
        assert_ne!(notification_id(id), notification_id(Uuid::new_v4()));
    }

    #[test]
    fn money_is_formatted_with_its_minor_units() {
        assert_eq!(format_money(1234, "EUR"), "12.34 EUR");
        assert_eq!(format_money(5, "USD"), "0.05 USD");
        assert_eq!(format_money(500, "JPY"), "500 JPY");
    }

    #[test]
    fn spool_files_cannot_carry_injected_headers() {
        let mailer = SpoolMailer::new("/nonexistent");
        let text = mailer.render(&MailMessage {
            notification_id: Uuid::nil(),
            to: "a@example.com".into(),
            to_name: "Eve\r\nBcc: x@example.com".into(),
            subject: "Hi".into(),
            body: "line".into(),
            date: Utc::now(),
        });
        assert!(!text.contains("\r\nBcc:"), "{text}");
    }
}
