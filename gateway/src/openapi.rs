//! The OpenAPI document of the HTTP API, served at `/api/v1/openapi.json`.
//!
//! Each route declares its own answers; [`declare_standard_answers`] then adds the problem
//! answers that the gateway's shared layers and extractors give on every route of a kind,
//! so the document says everything the code can answer: 401 and 403 where a bearer token is
//! required, 400 and 422 where a body or parameters are read, 404 where a path names a
//! resource, and 429 everywhere (the rate limits).
//!
//! The bounds a handler enforces are stated where its types are declared (`pattern`,
//! lengths, `minimum`/`maximum`), so that any request the document allows is one the code
//! takes; [`state_cross_field_bounds`] adds the rules that span fields, and
//! [`served_document`] those that come from the configuration.

use utoipa::OpenApi;

use crate::problem::ProblemDocument;
use crate::routes::{
    admin, aftersales, bookings, carts, categories, coupons, inventory, notifications, orders,
    payments, products, promotions, providers, reconciliations, reviews, search, service_orders,
    shipments, shipping, shows, users,
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
        inventory::restock, inventory::set_safety_threshold, inventory::get_inventory,
        orders::place_order, orders::prepare_order, orders::get_order, orders::list_orders,
        payments::pay_order, payments::cancel_order, payments::refund_order, payments::get_payment, payments::refund_payment, payments::payment_callback,
        reconciliations::run_reconciliation, reconciliations::get_reconciliation,
        shipments::pick_shipment, shipments::ship_shipment, shipments::get_shipment,
        shipments::tracking_update, shipments::confirm_receipt,
        aftersales::request_aftersale, aftersales::list_aftersales, aftersales::get_aftersale,
        aftersales::ship_return, aftersales::withdraw, aftersales::approve, aftersales::reject, aftersales::receive,
        reviews::submit_review, reviews::follow_up, reviews::report_review, reviews::publish_review, reviews::reject_review,
        reviews::product_reviews, reviews::product_rating, reviews::moderation_queue,
        shipping::get_rules, shipping::replace_rules, shipping::quote,
        admin::get_saga, admin::resume_saga,
        admin::list_dead_letters, admin::get_dead_letter, admin::redrive_dead_letter, admin::list_projections,
        admin::rebuild_projection, admin::list_streams,
        search::search, notifications::list_notifications, notifications::mark_read, notifications::stream_notifications,
        shows::create_show, shows::add_session, shows::list_shows, shows::get_show, shows::list_sessions,
        bookings::create_booking, bookings::get_booking, bookings::list_bookings, bookings::pay_booking,
        bookings::cancel_booking, bookings::refund_booking, bookings::ticket_qr, bookings::check_in,
        bookings::request_refund, bookings::withdraw_refund_request, bookings::list_refund_requests,
        bookings::approve_refund_request, bookings::reject_refund_request,
        users::get_profile, users::update_profile, users::erase_me, users::list_addresses, users::add_address,
        users::update_address, users::remove_address, users::admin_get_user, users::admin_erase_user,
        providers::set_profile, providers::submit_certification, providers::matching_orders, providers::get_provider,
        providers::list_providers, providers::verify_provider, providers::reject_provider,
        service_orders::publish_service_order, service_orders::list_service_orders, service_orders::get_service_order,
        service_orders::accept_service_order, service_orders::pay_service_order, service_orders::start_service_order,
        service_orders::complete_service_order, service_orders::confirm_service_order, service_orders::cancel_service_order,
        service_orders::review_service_order, service_orders::approve_service_order, service_orders::reject_service_order,
        service_orders::service_review_queue, service_orders::admin_service_orders, service_orders::publish_service_review, service_orders::reject_service_review,
    ),
    components(schemas(
        ProblemDocument,
        products::CreateProduct, products::NewSku, products::UpdateProduct, products::ProductView, products::ProductPage, products::ProductWritten,
        promotions::PromotionKind, promotions::CreatePromotion, promotions::CouponKind, promotions::CreateCouponBatch,
        promotions::PromotionWritten, promotions::CouponBatchWritten, promotions::PromotionPage, promotions::CouponBatchPage,
        promotions::PromotionView, promotions::CouponBatchView,
        coupons::ClaimCoupon, coupons::CouponClaimed, coupons::CouponPage, coupons::CouponView,
        coupons::QuoteCart, coupons::QuoteView, coupons::QuoteLineView, coupons::DiscountView, coupons::RefusalView,
        categories::CreateCategory, categories::ChangeCategory, categories::CategoryWritten, categories::CategoryList, categories::CategoryView,
        carts::GuestCartCreated, carts::SetQuantity, carts::MergeCart, carts::CartItemView, carts::CartDiscountView, carts::CartView,
        inventory::Restock, inventory::InventoryView, inventory::Restocked, inventory::SafetyThreshold, inventory::SafetyThresholdSet,
        orders::PlaceOrder, crate::checkout::CheckoutRequest, crate::checkout::CheckoutItem, crate::checkout::CheckoutQuote, orders::OrderAccepted, orders::OrderView, orders::OrderLineView, ordo_projections::queries::orders::OrderDiscountView, ordo_projections::queries::orders::OrderAddressView, orders::OrderPage,
        payments::PayOrder, payments::PaymentAccepted, payments::PaymentView, payments::ProviderCallback, admin::Resumed,
        admin::DeadLetterList, admin::Redriven, admin::ProjectionList, admin::RebuildStarted, admin::StreamView, admin::StreamList,
        shipments::ShipShipment, shipments::ShipmentWritten, shipments::TrackingUpdate, shipments::ReceiptConfirmed,
        shipments::ShipmentView, shipments::TrackingView,
        aftersales::KindParam, aftersales::RequestLine, aftersales::RequestAfterSale,
        aftersales::AfterSaleAccepted, aftersales::AfterSaleWritten, aftersales::ReturnShipment, aftersales::RejectAfterSale,
        aftersales::AfterSalePage, aftersales::AfterSaleView, aftersales::AfterSaleLineView, aftersales::ReturnShipmentView,
        reviews::SubmitReview, reviews::ReviewWritten, reviews::FollowUp, reviews::RejectReview, reviews::ReviewPage,
        reviews::ReviewView, reviews::ProductRating,
        payments::RefundPayment, payments::PaymentRefundAccepted,
        reconciliations::ReconciliationView, reconciliations::DiscrepancyView,
        shipping::ShippingRuleBody, shipping::ReplaceShippingRules, shipping::ShippingRulesView,
        shipping::ShippingQuoteRequest, shipping::ShippingQuoteView,
        ordo_projections::search::SearchPage, ordo_projections::search::SearchHit, ordo_projections::search::Facets, ordo_projections::search::ItemType,
        notifications::NotificationPage, ordo_reactors::inbox::NotificationView,
        shows::CreateShow, shows::NewSession, shows::NewSeatArea, shows::ShowWritten, shows::ShowSummary, shows::ShowView,
        shows::ShowPage, shows::SessionList, shows::SessionView, shows::SeatAreaView,
        bookings::CreateBooking, bookings::BookingAccepted, bookings::TicketView, bookings::BookingView, bookings::BookingSummary,
        bookings::BookingPage, bookings::PayBooking, bookings::RefundBooking, bookings::CheckIn, bookings::CheckedIn,
        bookings::RefundRequestView, bookings::RefundRequestReason, bookings::RefundRequestPage, bookings::RefundRequestSummary,
        users::ProfileView, users::UpdateProfile, users::AddressView, users::AddressList, users::UserView,
        users::NewAddress, users::AddressChange,
        providers::SetProviderProfile, providers::ProviderProfileView, providers::SubmitCertification,
        providers::CertificationSubmitted, providers::VerificationView, providers::RejectProvider, providers::ProviderList,
        ordo_projections::queries::marketplace::ProviderSummary, ordo_projections::queries::marketplace::PublicProvider,
        ordo_projections::queries::marketplace::ProviderRating, ordo_projections::queries::marketplace::ServiceOrderSummary,
        service_orders::PublishServiceOrder, service_orders::ServiceOrderPublished, service_orders::PayoutView,
        service_orders::ReviewView, service_orders::ServiceOrderView, service_orders::ServiceOrderList,
        service_orders::PayServiceOrder, service_orders::ServicePaymentAccepted, service_orders::ReasonBody,
        service_orders::ReviewDimensionsBody, service_orders::ReviewBody, service_orders::RejectServiceOrder,
        service_orders::ServiceReviewPage, service_orders::ServiceReviewSummary,
    )),
    tags((name = "auth"), (name = "products"), (name = "categories"), (name = "carts"), (name = "inventory"), (name = "orders"), (name = "payments"), (name = "shipments"), (name = "aftersales"), (name = "reviews"), (name = "shipping"), (name = "admin"), (name = "shows"), (name = "bookings"), (name = "search"), (name = "notifications"), (name = "users"), (name = "promotions"), (name = "coupons"), (name = "marketplace"))
)]
struct ApiDoc;

/// The whole document: these routes plus identity's, with the shared answers declared.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(crate::identity::openapi());
    declare_standard_answers(&mut doc);
    state_cross_field_bounds(&mut doc);
    headers_are_text(&mut doc);
    uuids_have_their_pattern(&mut doc);
    doc
}

/// A UUID is written in its hyphenated form: a `format: uuid` string that states no pattern
/// gets that form's pattern, so that a client (or a generator of requests) reading the
/// pattern alone knows an empty or other text is refused.
pub fn uuids_have_their_pattern(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::{ArrayItems, KnownFormat, Schema, SchemaFormat};
    use utoipa::openapi::RefOr;
    const UUID: &str =
        r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";
    fn visit(schema: &mut RefOr<Schema>) {
        let RefOr::T(schema) = schema else {
            return;
        };
        match schema {
            Schema::Object(object) => {
                if object.format == Some(SchemaFormat::KnownFormat(KnownFormat::Uuid))
                    && object.pattern.is_none()
                {
                    object.pattern = Some(UUID.into());
                }
                object.properties.values_mut().for_each(visit);
            }
            Schema::Array(array) => {
                if let ArrayItems::RefOrSchema(item) = &mut array.items {
                    visit(item);
                }
            }
            Schema::AllOf(all) => all.items.iter_mut().for_each(visit),
            Schema::AnyOf(any) => any.items.iter_mut().for_each(visit),
            Schema::OneOf(one) => one.items.iter_mut().for_each(visit),
            _ => {}
        }
    }
    if let Some(components) = doc.components.as_mut() {
        components.schemas.values_mut().for_each(visit);
    }
    for item in doc.paths.paths.values_mut() {
        let operations = [
            item.get.as_mut(),
            item.put.as_mut(),
            item.post.as_mut(),
            item.delete.as_mut(),
            item.patch.as_mut(),
        ];
        for operation in operations.into_iter().flatten() {
            for parameter in operation.parameters.iter_mut().flatten() {
                if let Some(schema) = parameter.schema.as_mut() {
                    visit(schema);
                }
            }
        }
    }
}

/// An optional header is absent or text, never JSON's `null`: the `Option` of a header
/// parameter makes it optional, not nullable.
pub fn headers_are_text(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::ParameterIn;
    use utoipa::openapi::schema::{Schema, SchemaType, Type};
    use utoipa::openapi::RefOr;
    for item in doc.paths.paths.values_mut() {
        let operations = [
            item.get.as_mut(),
            item.put.as_mut(),
            item.post.as_mut(),
            item.delete.as_mut(),
            item.patch.as_mut(),
        ];
        for operation in operations.into_iter().flatten() {
            for parameter in operation.parameters.iter_mut().flatten() {
                if !matches!(parameter.parameter_in, ParameterIn::Header) {
                    continue;
                }
                if let Some(RefOr::T(Schema::Object(schema))) = parameter.schema.as_mut() {
                    if let SchemaType::Array(types) = &schema.schema_type {
                        let text: Vec<Type> = types
                            .iter()
                            .filter(|t| **t != Type::Null)
                            .cloned()
                            .collect();
                        if let [only] = text.as_slice() {
                            schema.schema_type = SchemaType::Type(only.clone());
                        }
                    }
                }
            }
        }
    }
}

/// The document as this process serves it: [`document`] with the bounds its configuration
/// sets (the most seats one booking may have).
pub fn served_document(max_tickets_per_booking: u32) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::schema::Schema;
    use utoipa::openapi::RefOr;
    let mut doc = document();
    if let Some(RefOr::T(Schema::Object(booking))) = doc
        .components
        .as_mut()
        .and_then(|components| components.schemas.get_mut("CreateBooking"))
    {
        if let Some(RefOr::T(Schema::Object(quantity))) = booking.properties.get_mut("quantity") {
            quantity.maximum = Some(utoipa::Number::UInt(max_tickets_per_booking as usize));
        }
    }
    doc
}

/// Text of one line: 1 or more characters, none a control character, not all spaces.
const ONE_LINE: &str = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$";

/// An http(s) URL without spaces or control characters.
const MEDIA_URL: &str =
    r"^https?://[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$";

/// States the bounds that span fields, or that lie on the items of collections: a product's new `price` and `currency` come
/// together or not at all; the lines of an order, and the seat areas of a session, are
/// not repeated.
pub fn state_cross_field_bounds(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::{
        AdditionalProperties, AllOfBuilder, AnyOfBuilder, ArrayItems, ObjectBuilder, Schema, Type,
    };
    use utoipa::openapi::RefOr;
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    let schemas = &mut components.schemas;
    // The items of collections: media URLs, and a SKU's specification names and values.
    let line = |most: usize| -> Schema {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(most))
            .pattern(Some(ONE_LINE))
            .into()
    };
    // A review's dimensions: at most 10, each 1 to 5 stars.
    if let Some(RefOr::T(Schema::Object(review))) = schemas.get_mut("SubmitReview") {
        if let Some(RefOr::T(Schema::Object(dimensions))) = review.properties.get_mut("dimensions")
        {
            dimensions.max_properties = Some(10);
            dimensions.additional_properties = Some(Box::new(AdditionalProperties::RefOr(
                RefOr::T(Schema::Object(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1))
                        .maximum(Some(5))
                        .build(),
                )),
            )));
        }
    }
    for (schema, field) in [
        ("CreateProduct", "media"),
        ("UpdateProduct", "media"),
        ("RequestAfterSale", "evidence"),
        ("SubmitReview", "images"),
    ] {
        if let Some(RefOr::T(Schema::Object(product))) = schemas.get_mut(schema) {
            if let Some(RefOr::T(Schema::Array(media))) = product.properties.get_mut(field) {
                if let ArrayItems::RefOrSchema(item) = &mut media.items {
                    if let RefOr::T(Schema::Object(url)) = item.as_mut() {
                        url.pattern = Some(MEDIA_URL.into());
                        url.max_length = Some(2000);
                    }
                }
            }
        }
    }
    if let Some(update) = schemas.remove("UpdateProduct") {
        let neither = ObjectBuilder::new()
            .property("price", ObjectBuilder::new().schema_type(Type::Null))
            .property("currency", ObjectBuilder::new().schema_type(Type::Null));
        let both = ObjectBuilder::new()
            .property("price", ObjectBuilder::new().schema_type(Type::Integer))
            .property("currency", ObjectBuilder::new().schema_type(Type::String))
            .required("price")
            .required("currency");
        let together = AnyOfBuilder::new()
            .item(neither)
            .item(both)
            .description(Some("`price` and `currency` together, or neither"));
        schemas.insert(
            "UpdateProduct".into(),
            AllOfBuilder::new().item(update).item(together).into(),
        );
    }
    // A provider's skills are service types, and its areas the city's five.
    if let Some(RefOr::T(Schema::Object(profile))) = schemas.get_mut("SetProviderProfile") {
        let items = [
            (
                "skills",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^[A-Za-z0-9_-]{1,40}$"))
                    .build(),
            ),
            (
                "service_areas",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["NORTH", "SOUTH", "EAST", "WEST", "MID"]))
                    .build(),
            ),
        ];
        for (field, item) in items {
            if let Some(RefOr::T(Schema::Array(list))) = profile.properties.get_mut(field) {
                list.items = ArrayItems::RefOrSchema(Box::new(RefOr::T(Schema::Object(item))));
            }
        }
    }
    if let Some(RefOr::T(Schema::Object(sku))) = schemas.get_mut("NewSku") {
        if let Some(RefOr::T(Schema::Object(spec))) = sku.properties.get_mut("spec") {
            spec.max_properties = Some(10);
            spec.property_names = Some(Box::new(line(40)));
            spec.additional_properties =
                Some(Box::new(AdditionalProperties::RefOr(RefOr::T(line(100)))));
        }
    }
    if let Some(create) = schemas.remove("CreateProduct") {
        let text = || ObjectBuilder::new().schema_type(Type::String);
        let null = || ObjectBuilder::new().schema_type(Type::Null);
        let single = ObjectBuilder::new()
            .property("sku", text())
            .property("price", ObjectBuilder::new().schema_type(Type::Integer))
            .property("currency", text())
            .property("skus", null())
            .required("sku")
            .required("price")
            .required("currency");
        let mut several = ObjectBuilder::new()
            .property("skus", ObjectBuilder::new().schema_type(Type::Array))
            .property("product_id", text())
            .required("skus")
            .required("product_id");
        for field in [
            "sku",
            "price",
            "currency",
            "weight_grams",
            "max_per_customer",
        ] {
            several = several.property(field, null());
        }
        let forms = AnyOfBuilder::new()
            .item(single)
            .item(several)
            .description(Some(
                "one SKU (`sku`, `price`, `currency`) or `skus` with a `product_id`, not both",
            ));
        schemas.insert(
            "CreateProduct".into(),
            AllOfBuilder::new().item(create).item(forms).into(),
        );
    }
    // A checkout names its lines (`items`) or takes the cart's (`from_cart: true`), not
    // both; an order may instead name a preview (`quote_id`).
    let lines_given = || {
        ObjectBuilder::new()
            .property("items", ObjectBuilder::new().schema_type(Type::Array))
            .property(
                "from_cart",
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .enum_values(Some([false])),
            )
            .required("items")
    };
    let from_cart = || {
        ObjectBuilder::new()
            .property("items", ObjectBuilder::new().schema_type(Type::Null))
            .property(
                "from_cart",
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .enum_values(Some([true])),
            )
            .required("from_cart")
    };
    if let Some(checkout) = schemas.remove("CheckoutRequest") {
        schemas.insert("CheckoutLines".into(), checkout);
        let lines =
            || RefOr::<Schema>::Ref(utoipa::openapi::Ref::from_schema_name("CheckoutLines"));
        let forms = AnyOfBuilder::new()
            .item(lines_given())
            .item(from_cart())
            .description(Some("`items`, or `from_cart: true`, not both"));
        schemas.insert(
            "CheckoutRequest".into(),
            AllOfBuilder::new().item(lines()).item(forms).into(),
        );
        if let Some(RefOr::T(Schema::AllOf(order))) = schemas.get_mut("PlaceOrder") {
            let quote = ObjectBuilder::new()
                .property("quote_id", ObjectBuilder::new().schema_type(Type::String))
                .required("quote_id");
            let forms = AnyOfBuilder::new()
                .item(lines_given())
                .item(from_cart())
                .item(quote)
                .description(Some(
                    "`quote_id`, or `items`, or `from_cart: true` (not both of the last two)",
                ));
            for item in order.items.iter_mut() {
                if matches!(item, RefOr::Ref(r) if r.ref_location.ends_with("/CheckoutRequest")) {
                    *item = lines();
                }
            }
            order.items.push(forms.into());
        }
    }
    for (schema, array) in [
        ("PlaceOrder", "items"),
        ("CheckoutRequest", "items"),
        ("QuoteCart", "items"),
        ("NewSession", "seat_areas"),
    ] {
        if let Some(RefOr::T(Schema::Object(object))) = schemas.get_mut(schema) {
            if let Some(RefOr::T(Schema::Array(items))) = object.properties.get_mut(array) {
                if !matches!(items.items, ArrayItems::False) {
                    items.unique_items = true;
                }
            }
        }
    }
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
