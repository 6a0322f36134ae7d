//! The caller's own account: profile (full name, phone), postal addresses, and erasure of
//! every personal value (right to erasure); and the admin's erasure and view of any user.
//! Reads load the customer aggregate and open its sealed personal values, so they always
//! show the caller's last write.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use axum::Router;
use ordo_aggregates::common::{AddressId, ParseError, PersonalText, UserId};
use ordo_aggregates::customer::{self, AddressChanges, CustomerCommand, PostalAddress};
use ordo_store::CommandMetadata;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::commands::api_error;
use crate::identity::{AdminUser, AuthUser, CustomerUser};
use crate::problem::{ApiError, ApiJson};
use crate::profiles::{self, OpenedCustomer};
use crate::request_id::RequestId;
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/users/me",
            get(get_profile).patch(update_profile).delete(erase_me),
        )
        .route("/users/me/addresses", get(list_addresses).post(add_address))
        .route(
            "/users/me/addresses/{address_id}",
            patch(update_address).delete(remove_address),
        )
        .route(
            "/admin/users/{user_id}",
            get(admin_get_user).delete(admin_erase_user),
        )
}

/// A profile. A value is null when it was never set, or when it was erased.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProfileView {
    pub user_id: Uuid,
    pub full_name: Option<String>,
    pub phone: Option<String>,
    /// True once the user's personal data was erased.
    pub erased: bool,
}

/// Changes to the profile; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateProfile {
    /// 1 to 100 characters on one line.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub full_name: Option<String>,
    /// 5 to 15 digits; spaces, '-', '(', ')' and a leading '+' allowed.
    #[schema(
        min_length = 5,
        max_length = 20,
        example = "+33 6 12 34 56 78",
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*\+?[ ()-]*([0-9][ ()-]*){5,15}[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub phone: Option<String>,
}

/// A postal address. A value is null when the address has none, or when it was erased.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AddressView {
    pub address_id: Uuid,
    pub recipient: Option<String>,
    pub phone: Option<String>,
    pub province: Option<String>,
    pub city: Option<String>,
    pub district: Option<String>,
    pub detail: Option<String>,
    pub postal_code: Option<String>,
    /// Exactly one address is the default while any exist.
    pub is_default: bool,
}

/// The caller's addresses, oldest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AddressList {
    pub addresses: Vec<AddressView>,
}

/// A user as an admin sees it: profile and addresses (erased values null).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub profile: ProfileView,
    pub addresses: Vec<AddressView>,
}

/// A new address. The first one becomes the default.
#[derive(Debug, Deserialize, ToSchema)]
pub struct NewAddress {
    /// 1 to 100 characters on one line.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub recipient: String,
    /// 5 to 15 digits; spaces, '-', '(', ')' and a leading '+' allowed.
    #[schema(
        min_length = 5,
        max_length = 20,
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*\+?[ ()-]*([0-9][ ()-]*){5,15}[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub phone: String,
    /// 1 to 100 characters on one line.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub province: String,
    /// 1 to 100 characters on one line.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub city: String,
    /// 1 to 100 characters on one line.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub district: Option<String>,
    /// Street, number, building...: 1 to 300 characters.
    #[schema(
        min_length = 1,
        max_length = 300,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    pub detail: String,
    /// 1 to 16 letters, digits, spaces or '-'.
    #[schema(
        min_length = 1,
        max_length = 16,
        pattern = r"^[A-Za-z0-9 -]*[A-Za-z0-9-][A-Za-z0-9 -]*$"
    )]
    pub postal_code: Option<String>,
    /// Make it the default (the previous default no longer is).
    #[serde(default)]
    pub is_default: bool,
}

/// Changes to an address; absent fields stay as they are.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AddressChange {
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub recipient: Option<String>,
    #[schema(
        min_length = 5,
        max_length = 20,
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*\+?[ ()-]*([0-9][ ()-]*){5,15}[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub phone: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub province: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub city: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub district: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 300,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    pub detail: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 16,
        pattern = r"^[A-Za-z0-9 -]*[A-Za-z0-9-][A-Za-z0-9 -]*$"
    )]
    pub postal_code: Option<String>,
    /// `true` makes it the default; `false` on the default is refused
    /// (`urn:ordo:problem:default_address_required`): choose another default instead.
    pub is_default: Option<bool>,
}

/// A body read as a JSON object first: serde would also take a struct from an array.
fn object_body<T: serde::de::DeserializeOwned>(
    body: serde_json::Map<String, serde_json::Value>,
) -> Result<T, ApiError> {
    serde_json::from_value(serde_json::Value::Object(body)).map_err(|e| ApiError::Invalid {
        field: None,
        detail: e.to_string(),
    })
}

fn invalid(err: ParseError) -> ApiError {
    ApiError::invalid(err.field(), err.message())
}

fn parse_optional<T>(
    raw: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, ParseError>,
) -> Result<Option<T>, ApiError> {
    raw.map(parse).transpose().map_err(invalid)
}

fn value(text: Option<&PersonalText>) -> Option<String> {
    text.and_then(PersonalText::clear_value).map(str::to_owned)
}

fn address_views(customer: &OpenedCustomer) -> Vec<AddressView> {
    customer
        .addresses
        .iter()
        .map(|stored| {
            let a = &stored.address;
            AddressView {
                address_id: *stored.address_id.as_uuid(),
                recipient: value(Some(&a.recipient)),
                phone: value(Some(&a.phone)),
                province: value(Some(&a.province)),
                city: value(Some(&a.city)),
                district: value(a.district.as_ref()),
                detail: value(Some(&a.detail)),
                postal_code: value(a.postal_code.as_ref()),
                is_default: customer.default_address == Some(stored.address_id),
            }
        })
        .collect()
}

async fn opened(state: &AppState, user_id: UserId) -> Result<OpenedCustomer, ApiError> {
    state
        .profiles
        .opened(user_id)
        .await
        .map_err(|e| ApiError::Internal(e.into()))
}

async fn profile_view(state: &AppState, user_id: Uuid) -> Result<Option<ProfileView>, ApiError> {
    let Some(account) = state.identity.account_name(user_id).await? else {
        return Ok(None);
    };
    let customer = opened(state, UserId::from(user_id)).await?;
    // The name given at registration stands until the profile sets one.
    let full_name = match &customer.full_name {
        Some(name) => value(Some(name)),
        None if account.erased => None,
        None => Some(account.full_name),
    };
    Ok(Some(ProfileView {
        user_id,
        full_name,
        phone: value(customer.phone.as_ref()),
        erased: account.erased,
    }))
}

async fn execute(
    state: &AppState,
    user_id: Uuid,
    request_id: &str,
    command: CustomerCommand,
) -> Result<(), ApiError> {
    state
        .profiles
        .customers
        .execute(
            &user_id.to_string(),
            command,
            CommandMetadata::from_request(request_id, Some(user_id)),
        )
        .await
        .map_err(api_error)?;
    Ok(())
}

fn parse_address_id(raw: &str) -> Result<AddressId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound(format!("no address {raw}")))
}

/// The caller's profile.
#[utoipa::path(get, path = "/api/v1/users/me", tag = "users",
    security(("bearer" = [])),
    responses((status = 200, body = ProfileView)))]
pub async fn get_profile(
    State(state): State<AppState>,
    user: CustomerUser,
) -> Result<ApiJson<ProfileView>, ApiError> {
    profile_view(&state, user.user_id)
        .await?
        .map(ApiJson)
        .ok_or_else(|| ApiError::Unauthorized("the account no longer exists".into()))
}

/// Changes the caller's profile; answers it as it is now.
#[utoipa::path(patch, path = "/api/v1/users/me", tag = "users", request_body = UpdateProfile,
    security(("bearer" = [])),
    responses((status = 200, body = ProfileView)))]
pub async fn update_profile(
    State(state): State<AppState>,
    user: CustomerUser,
    RequestId(request_id): RequestId,
    ApiJson(body): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> Result<ApiJson<ProfileView>, ApiError> {
    let body: UpdateProfile = object_body(body)?;
    let subject = UserId::from(user.user_id);
    let command = CustomerCommand::ChangeProfile {
        full_name: parse_optional(body.full_name.as_deref(), |raw| {
            customer::parse_name(subject, raw, "full_name")
        })?,
        phone: parse_optional(body.phone.as_deref(), |raw| {
            customer::parse_phone(subject, raw, "phone")
        })?,
    };
    execute(&state, user.user_id, &request_id, command).await?;
    get_profile(State(state), user).await
}

/// Erases the caller's personal data (right to erasure), a customer's or a provider's: the key their personal values in
/// events are sealed with is deleted, the account is anonymised and every session ends.
/// The account cannot log in again. Repeating it with a still valid token is refused (401).
/// An admin's own account is not erased this way (403): another admin erases it.
#[utoipa::path(delete, path = "/api/v1/users/me", tag = "users",
    security(("bearer" = [])),
    responses((status = 204, description = "erased"),
               (status = 403, description = "an admin account: erased by another admin only")))]
pub async fn erase_me(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<StatusCode, ApiError> {
    if user.is_admin() {
        return Err(ApiError::Forbidden("customer or provider"));
    }
    profiles::erase_user(&state.identity, UserId::from(user.user_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's addresses, oldest first.
#[utoipa::path(get, path = "/api/v1/users/me/addresses", tag = "users",
    security(("bearer" = [])),
    responses((status = 200, body = AddressList)))]
pub async fn list_addresses(
    State(state): State<AppState>,
    user: CustomerUser,
) -> Result<ApiJson<AddressList>, ApiError> {
    let customer = opened(&state, UserId::from(user.user_id)).await?;
    Ok(ApiJson(AddressList {
        addresses: address_views(&customer),
    }))
}

/// Adds an address (at most 20). The first address becomes the default.
#[utoipa::path(post, path = "/api/v1/users/me/addresses", tag = "users", request_body = NewAddress,
    security(("bearer" = [])),
    responses((status = 201, body = AddressView),
               (status = 409, description = "20 addresses already (`urn:ordo:problem:address_limit_reached`)")))]
pub async fn add_address(
    State(state): State<AppState>,
    user: CustomerUser,
    RequestId(request_id): RequestId,
    ApiJson(body): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> Result<Response, ApiError> {
    let body: NewAddress = object_body(body)?;
    let subject = UserId::from(user.user_id);
    let address = PostalAddress {
        recipient: customer::parse_name(subject, &body.recipient, "recipient").map_err(invalid)?,
        phone: customer::parse_phone(subject, &body.phone, "phone").map_err(invalid)?,
        province: customer::parse_region(subject, &body.province, "province").map_err(invalid)?,
        city: customer::parse_region(subject, &body.city, "city").map_err(invalid)?,
        district: parse_optional(body.district.as_deref(), |raw| {
            customer::parse_region(subject, raw, "district")
        })?,
        detail: customer::parse_detail(subject, &body.detail).map_err(invalid)?,
        postal_code: parse_optional(body.postal_code.as_deref(), |raw| {
            customer::parse_postal_code(subject, raw)
        })?,
    };
    let address_id = AddressId::new_v4();
    let command = CustomerCommand::AddAddress {
        address_id,
        address,
        make_default: body.is_default,
    };
    execute(&state, user.user_id, &request_id, command).await?;
    let view = address_view(&state, subject, address_id).await?;
    Ok((
        StatusCode::CREATED,
        [(
            header::LOCATION,
            format!("/api/v1/users/me/addresses/{address_id}"),
        )],
        ApiJson(view),
    )
        .into_response())
}

async fn address_view(
    state: &AppState,
    subject: UserId,
    address_id: AddressId,
) -> Result<AddressView, ApiError> {
    let customer = opened(state, subject).await?;
    address_views(&customer)
        .into_iter()
        .find(|a| a.address_id == *address_id.as_uuid())
        .ok_or_else(|| ApiError::NotFound(format!("no address {address_id}")))
}

/// Changes one of the caller's addresses, or makes it the default.
#[utoipa::path(patch, path = "/api/v1/users/me/addresses/{address_id}", tag = "users",
    request_body = AddressChange,
    params(("address_id" = Uuid, Path, description = "the address")),
    security(("bearer" = [])),
    responses((status = 200, body = AddressView),
               (status = 404, description = "not one of the caller's addresses"),
               (status = 409, description = "`is_default: false` on the default address (`urn:ordo:problem:default_address_required`)")))]
pub async fn update_address(
    State(state): State<AppState>,
    user: CustomerUser,
    Path(address_id): Path<String>,
    RequestId(request_id): RequestId,
    ApiJson(body): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> Result<ApiJson<AddressView>, ApiError> {
    let address_id = parse_address_id(&address_id)?;
    let body: AddressChange = object_body(body)?;
    let subject = UserId::from(user.user_id);
    let changes = AddressChanges {
        recipient: parse_optional(body.recipient.as_deref(), |raw| {
            customer::parse_name(subject, raw, "recipient")
        })?,
        phone: parse_optional(body.phone.as_deref(), |raw| {
            customer::parse_phone(subject, raw, "phone")
        })?,
        province: parse_optional(body.province.as_deref(), |raw| {
            customer::parse_region(subject, raw, "province")
        })?,
        city: parse_optional(body.city.as_deref(), |raw| {
            customer::parse_region(subject, raw, "city")
        })?,
        district: parse_optional(body.district.as_deref(), |raw| {
            customer::parse_region(subject, raw, "district")
        })?,
        detail: parse_optional(body.detail.as_deref(), |raw| {
            customer::parse_detail(subject, raw)
        })?,
        postal_code: parse_optional(body.postal_code.as_deref(), |raw| {
            customer::parse_postal_code(subject, raw)
        })?,
    };
    let command = CustomerCommand::ChangeAddress {
        address_id,
        changes,
        make_default: body.is_default,
    };
    execute(&state, user.user_id, &request_id, command).await?;
    Ok(ApiJson(address_view(&state, subject, address_id).await?))
}

/// Removes one of the caller's addresses. When it was the default, the oldest remaining
/// address becomes the default.
#[utoipa::path(delete, path = "/api/v1/users/me/addresses/{address_id}", tag = "users",
    params(("address_id" = Uuid, Path, description = "the address")),
    security(("bearer" = [])),
    responses((status = 204, description = "removed"),
               (status = 404, description = "not one of the caller's addresses")))]
pub async fn remove_address(
    State(state): State<AppState>,
    user: CustomerUser,
    Path(address_id): Path<String>,
    RequestId(request_id): RequestId,
) -> Result<StatusCode, ApiError> {
    let address_id = parse_address_id(&address_id)?;
    let command = CustomerCommand::RemoveAddress { address_id };
    execute(&state, user.user_id, &request_id, command).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn parse_user_id(raw: &str) -> Result<Uuid, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound(format!("no user {raw}")))
}

/// A user's profile and addresses (admin); erased values are null and `erased` is true.
#[utoipa::path(get, path = "/api/v1/admin/users/{user_id}", tag = "admin",
    params(("user_id" = Uuid, Path, description = "the user")),
    security(("bearer" = [])),
    responses((status = 200, body = UserView), (status = 404, description = "no such user")))]
pub async fn admin_get_user(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(user_id): Path<String>,
) -> Result<ApiJson<UserView>, ApiError> {
    let user_id = parse_user_id(&user_id)?;
    let profile = profile_view(&state, user_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no user {user_id}")))?;
    let customer = opened(&state, UserId::from(user_id)).await?;
    Ok(ApiJson(UserView {
        profile,
        addresses: address_views(&customer),
    }))
}

/// Erases a user's personal data (admin), as `DELETE /users/me` does; repeating it is a
/// harmless 204. Admin accounts are not erased (409 `urn:ordo:problem:admin_not_erasable`).
#[utoipa::path(delete, path = "/api/v1/admin/users/{user_id}", tag = "admin",
    params(("user_id" = Uuid, Path, description = "the user")),
    security(("bearer" = [])),
    responses((status = 204, description = "erased"), (status = 404, description = "no such user"),
               (status = 409, description = "an admin account (`urn:ordo:problem:admin_not_erasable`)")))]
pub async fn admin_erase_user(
    State(state): State<AppState>,
    _admin: AdminUser,
    Path(user_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let user_id = parse_user_id(&user_id)?;
    profiles::erase_user(&state.identity, UserId::from(user_id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
