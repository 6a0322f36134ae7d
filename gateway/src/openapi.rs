//! The OpenAPI document of the HTTP API, served at `/api/v1/openapi.json`.
//!
//! Each route declares its own answers; [`declare_standard_answers`] then adds the problem
//! answers that the gateway's shared layers and extractors give on every route of a kind,
//! so the document says everything the code can answer: 401 and 403 where a bearer token is
//! required, 400 and 422 where a body or parameters are read, 404 where a path names a
//! resource, and 429 everywhere (the rate limits).

use utoipa::OpenApi;

use crate::problem::ProblemDocument;
use crate::routes::{
    admin, bookings, carts, categories, coupons, inventory, notifications, orders, payments,
    products, promotions, search, shows, users,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "Ordo", description = "Event-sourced commerce and ticketing API. Errors are application/problem+json (RFC 9457); commands that start long work answer 202 with Location; any GET accepts `Prefer: wait=N` to read the caller's last write."),
    paths(
        products::create_product, products::update_product, products::get_product, products::list_products,
        products::delist_sku, products::list_sku,
        promotions::create_promotion, promotions::list_promotions, promotions::end_promotion,
        promotions::create_coupon_batch, promotions::list_coupon_batches,
        coupons::claim_coupon, coupons::list_coupons, coupons::quote,
        carts::create_guest_cart, carts::get_cart, carts::set_item, carts::remove_item, carts::merge_cart,
        categories::create_category, categories::change_category, categories::delete_category, categories::list_categories,
        inventory::restock, inventory::get_inventory,
        orders::place_order, orders::prepare_order, orders::get_order, orders::list_orders,
        payments::pay_order, payments::cancel_order, payments::refund_order, payments::get_payment, payments::payment_callback,
        admin::get_saga, admin::resume_saga,
        search::search, notifications::list_notifications, notifications::mark_read, notifications::stream_notifications,
        shows::create_show, shows::add_session, shows::list_shows, shows::get_show, shows::list_sessions,
        bookings::create_booking, bookings::get_booking, bookings::list_bookings, bookings::pay_booking,
        bookings::cancel_booking, bookings::refund_booking, bookings::ticket_qr, bookings::check_in,
        users::get_profile, users::update_profile, users::erase_me, users::list_addresses, users::add_address,
        users::update_address, users::remove_address, users::admin_get_user, users::admin_erase_user,
    ),
    components(schemas(
        ProblemDocument,
        products::CreateProduct, products::NewSku, products::UpdateProduct, products::ProductView, products::ProductPage, products::ProductWritten,
        promotions::PromotionKind, promotions::CreatePromotion, promotions::CouponKind, promotions::CreateCouponBatch,
        promotions::PromotionWritten, promotions::CouponBatchWritten, promotions::PromotionPage, promotions::CouponBatchPage,
        promotions::PromotionView, promotions::CouponBatchView,
        coupons::ClaimCoupon, coupons::CouponClaimed, coupons::CouponPage, coupons::CouponView,
        coupons::QuoteCart, coupons::QuoteItem, coupons::QuoteView, coupons::QuoteLineView, coupons::DiscountView, coupons::RefusalView,
        categories::CreateCategory, categories::ChangeCategory, categories::CategoryWritten, categories::CategoryList, categories::CategoryView,
        carts::GuestCartCreated, carts::SetQuantity, carts::MergeCart, carts::CartItemView, carts::CartDiscountView, carts::CartView,
        inventory::Restock, inventory::InventoryView, inventory::Restocked,
        orders::PlaceOrder, crate::checkout::CheckoutRequest, crate::checkout::CheckoutItem, crate::checkout::CheckoutQuote, orders::OrderAccepted, orders::OrderView, orders::OrderLineView, orders::OrderPage,
        payments::PayOrder, payments::PaymentAccepted, payments::PaymentView, payments::ProviderCallback, admin::Resumed,
        ordo_projections::search::SearchPage, ordo_projections::search::SearchHit, ordo_projections::search::Facets, ordo_projections::search::ItemType,
        notifications::NotificationPage, ordo_reactors::inbox::NotificationView,
        shows::CreateShow, shows::NewSession, shows::NewSeatArea, shows::ShowWritten, shows::ShowSummary, shows::ShowView,
        shows::ShowPage, shows::SessionList, shows::SessionView, shows::SeatAreaView,
        bookings::CreateBooking, bookings::BookingAccepted, bookings::TicketView, bookings::BookingView, bookings::BookingSummary,
        bookings::BookingPage, bookings::PayBooking, bookings::RefundBooking, bookings::CheckIn, bookings::CheckedIn,
        users::ProfileView, users::UpdateProfile, users::AddressView, users::AddressList, users::UserView,
        users::NewAddress, users::AddressChange,
    )),
    tags((name = "auth"), (name = "products"), (name = "categories"), (name = "carts"), (name = "inventory"), (name = "orders"), (name = "payments"), (name = "admin"), (name = "shows"), (name = "bookings"), (name = "search"), (name = "notifications"), (name = "users"), (name = "promotions"), (name = "coupons"))
)]
struct ApiDoc;

/// The whole document: these routes plus identity's, with the shared answers declared.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::identity::openapi());
    declare_standard_answers(&mut doc);
    doc
}

/// Adds to every operation the problem answers the gateway gives on every route of its kind,
/// where the route does not declare them itself.
pub fn declare_standard_answers(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    for (path, item) in doc.paths.paths.iter_mut() {
        let operations = [
            item.get.as_mut(),
            item.put.as_mut(),
            item.post.as_mut(),
            item.delete.as_mut(),
            item.patch.as_mut(),
        ];
        for operation in operations.into_iter().flatten() {
            let parameters = operation.parameters.as_deref().unwrap_or_default();
            let reads_input = operation.request_body.is_some()
                || parameters
                    .iter()
                    .any(|p| matches!(p.parameter_in, ParameterIn::Query | ParameterIn::Path));
            let secured = operation
                .security
                .as_ref()
                .is_some_and(|requirements| !requirements.is_empty());
            let mut answers: Vec<(&str, &str)> = Vec::new();
            if reads_input {
                answers.push(("400", "malformed request: a body that is not JSON, or a parameter that does not parse"));
                answers.push(("422", "invalid request: a value out of its bounds"));
            }
            if secured {
                answers.push(("401", "missing, invalid or expired bearer token"));
                answers.push(("403", "the caller's role may not do this"));
            }
            if path.contains('{') {
                answers.push(("404", "no such resource, or not the caller's"));
            }
            answers.push((
                "429",
                "rate limited: retry after the Retry-After header's seconds",
            ));
            for (status, description) in answers {
                operation
                    .responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| problem_answer(description));
            }
        }
    }
}

fn problem_answer(description: &str) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ProblemDocument")))
                .build(),
        )
        .build()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secured_operation_declares_401_and_403_and_every_one_429() {
        let doc = document();
        let mut secured = 0;
        for (path, item) in &doc.paths.paths {
            for operation in [&item.get, &item.put, &item.post, &item.delete, &item.patch]
                .into_iter()
                .flatten()
            {
                let answers = &operation.responses.responses;
                assert!(answers.contains_key("429"), "{path}");
                if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    secured += 1;
                    assert!(
                        answers.contains_key("401") && answers.contains_key("403"),
                        "{path}"
                    );
                }
                if path.contains('{') {
                    assert!(answers.contains_key("404"), "{path}");
                }
            }
        }
        assert!(secured > 10, "most routes need a token: {secured}");
    }
}
