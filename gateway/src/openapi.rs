//! The OpenAPI document of the HTTP API, served at `/api/v1/openapi.json`.

use utoipa::OpenApi;

use crate::problem::ProblemDocument;
use crate::routes::{
    admin, bookings, inventory, notifications, orders, payments, products, search, shows,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "Ordo", description = "Event-sourced commerce and ticketing API. Errors are application/problem+json (RFC 9457); commands that start long work answer 202 with Location; any GET accepts `Prefer: wait=N` to read the caller's last write."),
    paths(
        products::create_product, products::update_product, products::get_product, products::list_products,
        inventory::restock, inventory::get_inventory,
        orders::place_order, orders::get_order, orders::list_orders,
        payments::pay_order, payments::cancel_order, payments::refund_order, payments::get_payment, payments::payment_callback,
        admin::get_saga, admin::resume_saga,
        search::search, notifications::list_notifications, notifications::mark_read, notifications::stream_notifications,
        shows::create_show, shows::add_session, shows::list_shows, shows::get_show, shows::list_sessions,
        bookings::create_booking, bookings::get_booking, bookings::list_bookings, bookings::pay_booking,
        bookings::cancel_booking, bookings::refund_booking, bookings::ticket_qr, bookings::check_in,
    ),
    components(schemas(
        ProblemDocument,
        products::CreateProduct, products::UpdateProduct, products::ProductView, products::ProductPage, products::ProductWritten,
        inventory::Restock, inventory::InventoryView, inventory::Restocked,
        orders::PlaceOrder, orders::OrderItem, orders::OrderAccepted, orders::OrderView, orders::OrderLineView, orders::OrderPage,
        payments::PayOrder, payments::PaymentAccepted, payments::PaymentView, payments::ProviderCallback, admin::Resumed,
        ordo_projections::search::SearchPage, ordo_projections::search::SearchHit, ordo_projections::search::Facets, ordo_projections::search::ItemType,
        notifications::NotificationPage, ordo_reactors::inbox::NotificationView,
        shows::CreateShow, shows::NewSession, shows::NewSeatArea, shows::ShowWritten, shows::ShowSummary, shows::ShowView,
        shows::ShowPage, shows::SessionList, shows::SessionView, shows::SeatAreaView,
        bookings::CreateBooking, bookings::BookingAccepted, bookings::TicketView, bookings::BookingView, bookings::BookingSummary,
        bookings::BookingPage, bookings::PayBooking, bookings::RefundBooking, bookings::CheckIn, bookings::CheckedIn,
    )),
    tags((name = "auth"), (name = "products"), (name = "inventory"), (name = "orders"), (name = "payments"), (name = "admin"), (name = "shows"), (name = "bookings"), (name = "search"), (name = "notifications"))
)]
struct ApiDoc;

/// The whole document: these routes plus identity's.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::identity::openapi());
    doc
}
