//! Shopping carts: one per customer, and guest carts for shoppers not logged in.
//!
//! A guest gets a cart with `POST /carts` and a `cart_token` of 256 random bits, which it
//! sends as the `Ordo-Cart` header; the token is never stored: the guest cart's id is derived
//! from it by SHA-256, so the event store and the subjects on NATS name the cart without
//! revealing what opens it. A customer's cart has an id derived from their user id. Every
//! cart route acts on the guest cart when `Ordo-Cart` is sent, else on the bearer's own
//! cart (401 without either). A guest cart merged into a customer's cart is retired: its
//! token then finds nothing.
//!
//! Every answer is the cart as it now is, priced from the catalog's write side (the product
//! aggregates' current prices and listing, the inventory items' stock), so it reflects the
//! command just run with no lag. `available` is the units of the SKU in stock now: a cart
//! may hold more, and shows it. Discounts are those of the promotions active now, by the
//! pricing engine ([`ordo_aggregates::pricing::PromotionsPolicy`] behind the cart's
//! [`ordo_aggregates::cart::DiscountPolicy`]); coupons are chosen at checkout, not in a cart.

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, put};
use axum::Router;
use ordo_aggregates::cart::{
    price_lines, Cart, CartCommand, CartOwner, MergeLine, SkuAdmission, MAX_LINE_QUANTITY,
};
use ordo_aggregates::common::{CartId, Currency, Sku, UserId};
use ordo_aggregates::pricing::PromotionsPolicy;
use ordo_aggregates::product::SkuState;
use ordo_store::{carts, catalog, CommandMetadata};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::commands::api_error;
use crate::identity::{AuthUser, CustomerUser};
use crate::problem::{ApiError, ApiJson};
use crate::request_id::RequestId;
use crate::state::AppState;

/// The header a guest sends its cart token in.
pub const CART_HEADER: &str = "ordo-cart";
/// The currency an empty cart is shown in.
const EMPTY_CART_CURRENCY: &str = "EUR";

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/carts", post(create_guest_cart))
        .route("/cart", axum::routing::get(get_cart))
        .route("/cart/items/{sku}", put(set_item).delete(remove_item))
        .route("/cart/merge", post(merge_cart))
}

/// The id of a customer's cart.
pub fn customer_cart_id(user_id: Uuid) -> Uuid {
    *ordo_aggregates::cart::customer_cart_id(UserId::from(user_id)).as_uuid()
}

/// The id of the guest cart a token opens.
fn guest_cart_id(token: &str) -> Uuid {
    let digest = Sha256::digest(format!("ordo-guest-cart:{token}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::from_bytes(bytes)
}

/// A token is 64 lowercase hex digits (256 bits).
fn parse_token(raw: &str) -> Option<&str> {
    (raw.len() == 64 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(raw)
}

/// Whose cart a request acts on: the guest cart of its `Ordo-Cart` header, else the
/// bearer's own; 401 without either, before any body is read.
pub enum CartCaller {
    /// A guest, by token.
    Guest {
        /// The guest cart's id.
        cart_id: Uuid,
    },
    /// A logged-in user.
    User(AuthUser),
}

impl CartCaller {
    fn cart_id(&self) -> Uuid {
        match self {
            CartCaller::Guest { cart_id } => *cart_id,
            CartCaller::User(user) => customer_cart_id(user.user_id),
        }
    }

    fn owner(&self) -> CartOwner {
        match self {
            CartCaller::Guest { .. } => CartOwner::Guest,
            CartCaller::User(user) => CartOwner::Customer(UserId::from(user.user_id)),
        }
    }

    fn user_id(&self) -> Option<Uuid> {
        match self {
            CartCaller::Guest { .. } => None,
            CartCaller::User(user) => Some(user.user_id),
        }
    }
}

impl FromRequestParts<AppState> for CartCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(value) = parts.headers.get(CART_HEADER) {
            let gone = || ApiError::NotFound("no such cart".into());
            let token = value.to_str().ok().and_then(parse_token).ok_or_else(gone)?;
            let cart_id = guest_cart_id(token);
            // A guest cart exists once opened, and until merged.
            let (_, version) = state
                .carts
                .load(&cart_id.to_string())
                .await
                .map_err(api_error)?;
            let merged = carts::merged_into(&state.pool, cart_id)
                .await
                .map_err(|e| ApiError::Internal(e.into()))?;
            if version == 0 || merged.is_some() {
                return Err(gone());
            }
            return Ok(CartCaller::Guest { cart_id });
        }
        let user =
            <AuthUser as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        Ok(CartCaller::User(user))
    }
}

/// A new guest cart.
#[derive(Debug, Serialize, ToSchema)]
pub struct GuestCartCreated {
    /// Send it as the `Ordo-Cart` header; it is shown once and cannot be recovered.
    pub cart_token: String,
}

/// A line's new quantity.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SetQuantity {
    /// Units, 0 (removes the line) to 100.
    #[schema(minimum = 0, maximum = 100)]
    pub quantity: i64,
}

/// The guest cart to merge into the caller's.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MergeCart {
    /// The guest cart's token.
    #[schema(min_length = 64, max_length = 64)]
    pub cart_token: String,
}

/// One line of a cart.
#[derive(Debug, Serialize, ToSchema)]
pub struct CartItemView {
    pub sku: String,
    pub name: String,
    pub quantity: u32,
    /// The catalog's unit price now, minor units.
    pub unit_price: i64,
    /// Quantity times unit price, minor units.
    pub line_total: i64,
    /// Units in stock now; the line may hold more.
    pub available: u64,
    /// False once the SKU is delisted: it cannot be ordered.
    pub on_sale: bool,
}

/// A discount applied to the cart.
#[derive(Debug, Serialize, ToSchema)]
pub struct CartDiscountView {
    pub label: String,
    /// Minor units taken off.
    pub amount: i64,
}

/// A cart, priced now.
#[derive(Debug, Serialize, ToSchema)]
pub struct CartView {
    pub items: Vec<CartItemView>,
    /// Sum of the line totals, minor units.
    pub subtotal: i64,
    pub discounts: Vec<CartDiscountView>,
    /// Subtotal less discounts, minor units.
    pub total: i64,
    pub currency: String,
}

fn internal(err: impl Into<anyhow::Error>) -> ApiError {
    ApiError::Internal(err.into())
}

/// The SKU as its product aggregate has it now, if the catalog has it.
async fn sku_state(state: &AppState, sku: &Sku) -> Result<Option<(String, SkuState)>, ApiError> {
    let Some(product_id) = catalog::product_of_sku(&state.pool, sku.as_str())
        .await
        .map_err(internal)?
    else {
        return Ok(None);
    };
    let (product, _) = state.products.load(&product_id).await.map_err(api_error)?;
    let name = product.details().map(|d| d.name.to_string());
    Ok(name.zip(product.sku(sku).cloned()))
}

/// The cart `cart`, priced from the write side.
async fn view(state: &AppState, cart: &Cart) -> Result<CartView, ApiError> {
    let mut lines = Vec::new();
    let mut facts = Vec::new();
    for (sku, quantity) in cart.lines() {
        let Some((name, offer)) = sku_state(state, sku).await? else {
            continue;
        };
        let (item, _) = state
            .inventory
            .load(sku.as_str())
            .await
            .map_err(api_error)?;
        lines.push((sku.clone(), *quantity, offer.spec.price.clone()));
        facts.push((name, item.available(), offer.on_sale));
    }
    let currency = Currency::parse(EMPTY_CART_CURRENCY).map_err(internal)?;
    let now = chrono::Utc::now();
    let promotions = state
        .offers
        .active_promotions(now)
        .await
        .map_err(internal)?;
    let policy = PromotionsPolicy {
        promotions: &promotions,
        now,
    };
    let priced = price_lines(lines.clone(), currency, &policy);
    let items = priced
        .lines
        .iter()
        .map(|line| {
            let index = lines
                .iter()
                .position(|(s, _, _)| s == &line.sku)
                .unwrap_or(0);
            let (name, available, on_sale) = &facts[index];
            CartItemView {
                sku: line.sku.to_string(),
                name: name.clone(),
                quantity: line.quantity,
                unit_price: line.unit_price.amount_minor(),
                line_total: line.line_total.amount_minor(),
                available: *available,
                on_sale: *on_sale,
            }
        })
        .collect();
    Ok(CartView {
        items,
        subtotal: priced.subtotal.amount_minor(),
        discounts: priced
            .discounts
            .iter()
            .map(|d| CartDiscountView {
                label: d.label.clone(),
                amount: d.amount.amount_minor(),
            })
            .collect(),
        total: priced.total.amount_minor(),
        currency: priced.total.currency().to_string(),
    })
}

async fn execute(
    state: &AppState,
    caller: &CartCaller,
    request_id: &str,
    command: CartCommand,
) -> Result<ApiJson<CartView>, ApiError> {
    let id = caller.cart_id().to_string();
    state
        .carts
        .execute(
            &id,
            command,
            CommandMetadata::from_request(request_id, caller.user_id()),
        )
        .await
        .map_err(api_error)?;
    let (cart, _) = state.carts.load(&id).await.map_err(api_error)?;
    view(state, &cart).await.map(ApiJson)
}

/// Opens a guest cart (anyone).
#[utoipa::path(post, path = "/api/v1/carts", tag = "carts",
    responses((status = 201, body = GuestCartCreated)))]
pub async fn create_guest_cart(
    State(state): State<AppState>,
    RequestId(request_id): RequestId,
) -> Result<Response, ApiError> {
    let token = hex::encode(rand::random::<[u8; 32]>());
    let cart_id = guest_cart_id(&token);
    state
        .carts
        .execute(
            &cart_id.to_string(),
            CartCommand::Open {
                owner: CartOwner::Guest,
            },
            CommandMetadata::from_request(&request_id, None),
        )
        .await
        .map_err(api_error)?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, "/api/v1/cart".to_owned())],
        ApiJson(GuestCartCreated { cart_token: token }),
    )
        .into_response())
}

/// The cart: the guest cart of `Ordo-Cart`, else the caller's own.
#[utoipa::path(get, path = "/api/v1/cart", tag = "carts",
    params(("Ordo-Cart" = Option<String>, Header, description = "a guest cart's token")),
    security((), ("bearer" = [])),
    responses((status = 200, body = CartView), (status = 404, description = "no such guest cart")))]
pub async fn get_cart(
    State(state): State<AppState>,
    caller: CartCaller,
) -> Result<ApiJson<CartView>, ApiError> {
    let (cart, _) = state
        .carts
        .load(&caller.cart_id().to_string())
        .await
        .map_err(api_error)?;
    view(&state, &cart).await.map(ApiJson)
}

/// What the catalog's write side says of putting `sku` in `cart`.
async fn admission(state: &AppState, cart: &Cart, sku: &Sku) -> Result<SkuAdmission, ApiError> {
    let Some((_, offer)) = sku_state(state, sku).await? else {
        return Ok(SkuAdmission::Unknown);
    };
    if !offer.on_sale {
        return Ok(SkuAdmission::NotOnSale);
    }
    for other in cart.lines().keys().filter(|s| *s != sku) {
        if let Some((_, line)) = sku_state(state, other).await? {
            if line.spec.price.currency() != offer.spec.price.currency() {
                return Ok(SkuAdmission::OtherCurrency);
            }
        }
    }
    Ok(SkuAdmission::Admitted)
}

async fn set_quantity(
    state: &AppState,
    caller: &CartCaller,
    request_id: &str,
    sku: &str,
    quantity: u32,
) -> Result<ApiJson<CartView>, ApiError> {
    let sku = Sku::parse(sku).map_err(|e| ApiError::invalid("sku", e.to_string()))?;
    let (cart, _) = state
        .carts
        .load(&caller.cart_id().to_string())
        .await
        .map_err(api_error)?;
    let admission = if quantity > 0 {
        admission(state, &cart, &sku).await?
    } else {
        SkuAdmission::Admitted
    };
    let command = CartCommand::SetQuantity {
        owner: caller.owner(),
        sku,
        quantity,
        admission,
    };
    execute(state, caller, request_id, command).await
}

/// Sets how many units of a SKU the cart holds; 0 removes the line. Unknown and delisted
/// SKUs are refused; more than the stock is accepted.
#[utoipa::path(put, path = "/api/v1/cart/items/{sku}", tag = "carts", request_body = SetQuantity,
    params(("sku" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$"),
        ("Ordo-Cart" = Option<String>, Header, description = "a guest cart's token")),
    security((), ("bearer" = [])),
    responses((status = 200, body = CartView),
               (status = 404, description = "no such guest cart, or problem urn:ordo:problem:unknown_sku: a SKU not in the catalog"),
               (status = 409, description = "not on sale, another currency, or the cart is full"),
               (status = 422, description = "quantity out of range")))]
pub async fn set_item(
    State(state): State<AppState>,
    caller: CartCaller,
    RequestId(request_id): RequestId,
    Path(sku): Path<String>,
    ApiJson(body): ApiJson<SetQuantity>,
) -> Result<ApiJson<CartView>, ApiError> {
    let quantity = u32::try_from(body.quantity)
        .ok()
        .filter(|q| *q <= MAX_LINE_QUANTITY)
        .ok_or_else(|| ApiError::invalid("quantity", "quantity must be 0 to 100"))?;
    set_quantity(&state, &caller, &request_id, &sku, quantity).await
}

/// Removes a SKU from the cart.
#[utoipa::path(delete, path = "/api/v1/cart/items/{sku}", tag = "carts",
    params(("sku" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,64}$"),
        ("Ordo-Cart" = Option<String>, Header, description = "a guest cart's token")),
    security((), ("bearer" = [])),
    responses((status = 200, body = CartView), (status = 404, description = "no such guest cart")))]
pub async fn remove_item(
    State(state): State<AppState>,
    caller: CartCaller,
    RequestId(request_id): RequestId,
    Path(sku): Path<String>,
) -> Result<ApiJson<CartView>, ApiError> {
    set_quantity(&state, &caller, &request_id, &sku, 0).await
}

/// Merges a guest cart into the caller's cart: each guest quantity is added to the
/// caller's, capped by the stock and the SKU's purchase limit, and the guest cart is
/// retired. Merging the same guest cart again changes nothing.
#[utoipa::path(post, path = "/api/v1/cart/merge", tag = "carts", request_body = MergeCart,
    security(("bearer" = [])),
    responses((status = 200, body = CartView), (status = 404, description = "no such guest cart")))]
pub async fn merge_cart(
    State(state): State<AppState>,
    user: CustomerUser,
    RequestId(request_id): RequestId,
    ApiJson(body): ApiJson<MergeCart>,
) -> Result<ApiJson<CartView>, ApiError> {
    let caller = CartCaller::User(user.into_inner());
    let my_cart = caller.cart_id();
    let gone = || ApiError::NotFound("no such cart".into());
    let token = parse_token(&body.cart_token).ok_or_else(gone)?;
    let guest_id = guest_cart_id(token);
    let (guest, version) = state
        .carts
        .load(&guest_id.to_string())
        .await
        .map_err(api_error)?;
    if version == 0 || guest.owner() != Some(CartOwner::Guest) {
        return Err(gone());
    }
    match carts::merged_into(&state.pool, guest_id)
        .await
        .map_err(internal)?
    {
        Some(into) if into != my_cart => return Err(gone()),
        _ => {}
    }
    let customer = caller.user_id().unwrap_or_default();
    let mut lines = Vec::new();
    for (sku, quantity) in guest.lines() {
        let cap = match sku_state(&state, sku).await? {
            Some((_, offer)) if offer.on_sale => {
                let (item, _) = state
                    .inventory
                    .load(sku.as_str())
                    .await
                    .map_err(api_error)?;
                let mut cap = item.available();
                if let Some(limit) = offer.spec.max_per_customer {
                    let ordered =
                        catalog::units_ordered(&state.pool, customer, sku.as_str(), Uuid::nil())
                            .await
                            .map_err(internal)?;
                    cap = cap.min(u64::from(limit.get()).saturating_sub(ordered));
                }
                u32::try_from(cap).unwrap_or(u32::MAX)
            }
            _ => 0,
        };
        lines.push(MergeLine {
            sku: sku.clone(),
            quantity: *quantity,
            cap,
        });
    }
    let command = CartCommand::MergeGuest {
        owner: caller.owner(),
        guest_cart_id: CartId::from(guest_id),
        lines,
    };
    execute(&state, &caller, &request_id, command).await
}
