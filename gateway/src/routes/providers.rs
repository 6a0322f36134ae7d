//! Service providers: a provider's own profile and certifications, the admins' review of
//! providers (list by status, verify, reject), the public profile with its rating, and the
//! open service orders matching the calling provider.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::Router;
use ordo_aggregates::common::{CertificationId, MediaUrl, Reason, UserId};
use ordo_aggregates::customer;
use ordo_aggregates::provider::{
    self, Certification, ProviderCommand, ProviderProfile, VerificationStatus,
};
use ordo_projections::queries::marketplace::{self as queries, ProviderSummary, PublicProvider};
use ordo_projections::queries::page::PageRequest;
use ordo_store::CommandMetadata;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::commands::api_error;
use crate::identity::{AdminUser, ProviderUser};
use crate::problem::{ApiError, ApiJson};
use crate::request_id::RequestId;
use crate::routes::service_orders::ServiceOrderList;
use crate::state::AppState;

/// The routes of this resource.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/providers/me/profile", put(set_profile))
        .route("/providers/me/certifications", post(submit_certification))
        .route("/providers/me/matching-orders", get(matching_orders))
        .route("/providers/{provider_id}", get(get_provider))
        .route("/admin/providers", get(list_providers))
        .route(
            "/admin/providers/{provider_id}/verify",
            post(verify_provider),
        )
        .route(
            "/admin/providers/{provider_id}/reject",
            post(reject_provider),
        )
}

/// A provider's whole profile.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SetProviderProfile {
    /// 1 to 100 characters on one line.
    #[schema(
        min_length = 1,
        max_length = 100,
        example = "Pat Plumber",
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub full_name: String,
    /// 5 to 15 digits; spaces, '-', '(', ')' and a leading '+' allowed.
    #[schema(
        min_length = 5,
        max_length = 20,
        example = "+49 30 1234567",
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*\+?[ ()-]*([0-9][ ()-]*){5,15}[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    pub phone: String,
    /// 1 to 20 service types, each 1 to 40 letters, digits, '_' or '-'.
    #[schema(min_items = 1, max_items = 20, example = json!(["plumbing"]))]
    pub skills: Vec<String>,
    /// 1 to 5 of NORTH, SOUTH, EAST, WEST, MID.
    #[schema(min_items = 1, max_items = 5, example = json!(["NORTH", "MID"]))]
    pub service_areas: Vec<String>,
    /// At most 2000 characters.
    #[serde(default)]
    #[schema(
        max_length = 2000,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    pub bio: String,
}

/// The caller's provider profile, personal values opened.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProviderProfileView {
    pub provider_id: Uuid,
    pub full_name: Option<String>,
    pub phone: Option<String>,
    pub skills: Vec<String>,
    pub service_areas: Vec<String>,
    pub bio: Option<String>,
    /// `unverified`, `pending_verification`, `verified` or `rejected`.
    pub verification_status: String,
}

/// A certification to be verified.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SubmitCertification {
    /// 1 to 200 characters on one line.
    #[schema(
        min_length = 1,
        max_length = 200,
        example = "Master plumber",
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    /// An http(s) URL of at most 2000 characters.
    #[schema(
        max_length = 2000,
        example = "https://files.example.com/cert.pdf",
        pattern = r"^https?://[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$"
    )]
    pub file_url: String,
}

/// A certification recorded.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CertificationSubmitted {
    pub certification_id: Uuid,
    pub verification_status: String,
}

/// A provider's verification after an admin's decision.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerificationView {
    pub provider_id: Uuid,
    pub verification_status: String,
}

/// Why an admin refuses a provider.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RejectProvider {
    /// 1 to 500 characters.
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$"
    )]
    pub reason: String,
}

/// Providers as admins list them.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderList {
    pub providers: Vec<ProviderSummary>,
    /// Where the next page starts; null on the last page.
    pub next_cursor: Option<String>,
}

/// The filter of the admins' provider list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ProviderFilter {
    /// `unverified`, `pending_verification`, `verified` or `rejected`; any when absent.
    #[param(pattern = "^(unverified|pending_verification|verified|rejected)$")]
    pub status: Option<String>,
    /// From `next_cursor` of the previous page.
    #[param(pattern = r"^(3[0-9]){1,18}7c(3[0-9]|6[1-6]){32}$")]
    pub cursor: Option<String>,
    /// 1 to 100, 20 when absent.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

/// A page of a list: where it starts and its size (1 to 100, 20 when absent).
#[derive(Debug, Deserialize, IntoParams)]
pub struct Limit {
    /// From `next_cursor` of the previous page.
    #[param(pattern = r"^(3[0-9]){1,18}7c(3[0-9]|6[1-6]){32}$")]
    pub cursor: Option<String>,
    /// 1 to 100, 20 when absent.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
}

fn invalid(err: ordo_aggregates::common::ParseError) -> ApiError {
    ApiError::invalid(err.field(), err.message())
}

fn provider_id_of(raw: &str) -> Result<UserId, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::NotFound(format!("no provider {raw}")))
}

async fn execute(
    state: &AppState,
    provider_id: UserId,
    caller: Uuid,
    request_id: &str,
    command: ProviderCommand,
) -> Result<(), ApiError> {
    state
        .marketplace
        .providers
        .execute(
            &provider_id.to_string(),
            command,
            CommandMetadata::from_request(request_id, Some(caller)),
        )
        .await
        .map_err(api_error)?;
    Ok(())
}

/// Sets the caller's whole provider profile; answers it as it is now.
#[utoipa::path(put, path = "/api/v1/providers/me/profile", tag = "marketplace",
    request_body = SetProviderProfile, security(("bearer" = [])),
    responses((status = 200, body = ProviderProfileView)))]
pub async fn set_profile(
    State(state): State<AppState>,
    user: ProviderUser,
    RequestId(request_id): RequestId,
    ApiJson(body): ApiJson<SetProviderProfile>,
) -> Result<ApiJson<ProviderProfileView>, ApiError> {
    let subject = UserId::from(user.user_id);
    let profile = ProviderProfile {
        full_name: customer::parse_name(subject, &body.full_name, "full_name").map_err(invalid)?,
        phone: customer::parse_phone(subject, &body.phone, "phone").map_err(invalid)?,
        skills: provider::parse_skills(&body.skills).map_err(invalid)?,
        service_areas: provider::parse_areas(&body.service_areas).map_err(invalid)?,
        bio: provider::parse_bio(subject, &body.bio).map_err(invalid)?,
    };
    execute(
        &state,
        subject,
        user.user_id,
        &request_id,
        ProviderCommand::SetProfile(profile),
    )
    .await?;
    let (provider, _) = state.marketplace.opened_provider(subject).await?;
    let text = |t: &ordo_aggregates::common::PersonalText| t.clear_value().map(str::to_owned);
    let profile = provider.profile();
    Ok(ApiJson(ProviderProfileView {
        provider_id: user.user_id,
        full_name: profile.and_then(|p| text(&p.full_name)),
        phone: profile.and_then(|p| text(&p.phone)),
        skills: profile
            .map(|p| p.skills.iter().map(|s| s.to_string()).collect())
            .unwrap_or_default(),
        service_areas: profile
            .map(|p| p.service_areas.iter().map(|a| a.to_string()).collect())
            .unwrap_or_default(),
        bio: profile.and_then(|p| text(&p.bio)),
        verification_status: provider.status().as_str().to_owned(),
    }))
}

/// Submits a certification; the provider then waits for an admin's verification.
#[utoipa::path(post, path = "/api/v1/providers/me/certifications", tag = "marketplace",
    request_body = SubmitCertification, security(("bearer" = [])),
    responses((status = 201, body = CertificationSubmitted),
              (status = 409, description = "no profile yet (`urn:ordo:problem:profile_required`), or too many certifications")))]
pub async fn submit_certification(
    State(state): State<AppState>,
    user: ProviderUser,
    RequestId(request_id): RequestId,
    ApiJson(body): ApiJson<SubmitCertification>,
) -> Result<(StatusCode, ApiJson<CertificationSubmitted>), ApiError> {
    let certification = Certification {
        certification_id: CertificationId::new_v4(),
        name: provider::parse_certification_name(&body.name).map_err(invalid)?,
        file_url: MediaUrl::parse(&body.file_url).map_err(|_| {
            ApiError::invalid(
                "file_url",
                "file_url must be an http(s) URL of at most 2000 characters without spaces",
            )
        })?,
    };
    let certification_id = *certification.certification_id.as_uuid();
    let subject = UserId::from(user.user_id);
    execute(
        &state,
        subject,
        user.user_id,
        &request_id,
        ProviderCommand::SubmitCertification(certification),
    )
    .await?;
    let (provider, _) = state.marketplace.provider(subject).await?;
    Ok((
        StatusCode::CREATED,
        ApiJson(CertificationSubmitted {
            certification_id,
            verification_status: provider.status().as_str().to_owned(),
        }),
    ))
}

/// The approved orders nobody accepted yet that match the caller's skills and areas; empty
/// for a provider who is not verified.
#[utoipa::path(get, path = "/api/v1/providers/me/matching-orders", tag = "marketplace",
    params(Limit), security(("bearer" = [])),
    responses((status = 200, body = ServiceOrderList)))]
pub async fn matching_orders(
    State(state): State<AppState>,
    user: ProviderUser,
    Query(query): Query<Limit>,
) -> Result<ApiJson<ServiceOrderList>, ApiError> {
    let page = PageRequest::parse(query.cursor.as_deref(), query.limit)?;
    let (provider, _) = state
        .marketplace
        .provider(UserId::from(user.user_id))
        .await?;
    let qualification = provider.qualification();
    if qualification.status != VerificationStatus::Verified {
        return Ok(ApiJson(ServiceOrderList {
            service_orders: Vec::new(),
            next_cursor: None,
        }));
    }
    let skills: Vec<String> = qualification.skills.iter().map(|s| s.to_string()).collect();
    let areas: Vec<String> = qualification
        .service_areas
        .iter()
        .map(|a| a.to_string())
        .collect();
    let page = queries::matching_orders(&state.pool, &skills, &areas, &page).await?;
    Ok(ApiJson(ServiceOrderList {
        service_orders: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// A provider's public profile: skills, areas, verification and rating.
#[utoipa::path(get, path = "/api/v1/providers/{provider_id}", tag = "marketplace",
    params(("provider_id" = String, Path, description = "the provider's user id")),
    responses((status = 200, body = PublicProvider), (status = 404, description = "no such provider")))]
pub async fn get_provider(
    State(state): State<AppState>,
    Path(provider_id): Path<String>,
) -> Result<ApiJson<PublicProvider>, ApiError> {
    let id = provider_id_of(&provider_id)?;
    queries::public_provider(&state.pool, *id.as_uuid())
        .await?
        .map(ApiJson)
        .ok_or_else(|| ApiError::NotFound(format!("no provider {provider_id}")))
}

/// Providers by verification status, the longest waiting first.
#[utoipa::path(get, path = "/api/v1/admin/providers", tag = "marketplace",
    params(ProviderFilter), security(("bearer" = [])),
    responses((status = 200, body = ProviderList)))]
pub async fn list_providers(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(filter): Query<ProviderFilter>,
) -> Result<ApiJson<ProviderList>, ApiError> {
    let page = PageRequest::parse(filter.cursor.as_deref(), filter.limit)?;
    let status = match filter.status.as_deref() {
        None => None,
        Some(raw) => Some(
            VerificationStatus::from_name(raw)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "status",
                        "status must be unverified, pending_verification, verified or rejected",
                    )
                })?
                .as_str(),
        ),
    };
    let page = queries::providers(&state.pool, status, &page).await?;
    Ok(ApiJson(ProviderList {
        providers: page.items,
        next_cursor: page.next_cursor,
    }))
}

async fn decide(
    state: &AppState,
    admin: &AdminUser,
    request_id: &str,
    provider_id: &str,
    command: ProviderCommand,
) -> Result<ApiJson<VerificationView>, ApiError> {
    let id = provider_id_of(provider_id)?;
    let (_, version) = state.marketplace.provider(id).await?;
    if version == 0 {
        return Err(ApiError::NotFound(format!("no provider {provider_id}")));
    }
    execute(state, id, admin.user_id, request_id, command).await?;
    let (provider, _) = state.marketplace.provider(id).await?;
    Ok(ApiJson(VerificationView {
        provider_id: *id.as_uuid(),
        verification_status: provider.status().as_str().to_owned(),
    }))
}

/// Verifies a provider waiting for verification.
#[utoipa::path(post, path = "/api/v1/admin/providers/{provider_id}/verify", tag = "marketplace",
    params(("provider_id" = String, Path, description = "the provider's user id")),
    security(("bearer" = [])),
    responses((status = 200, body = VerificationView), (status = 404, description = "no such provider"),
              (status = 409, description = "not pending verification (`urn:ordo:problem:not_pending_verification`)")))]
pub async fn verify_provider(
    State(state): State<AppState>,
    admin: AdminUser,
    RequestId(request_id): RequestId,
    Path(provider_id): Path<String>,
) -> Result<ApiJson<VerificationView>, ApiError> {
    decide(
        &state,
        &admin,
        &request_id,
        &provider_id,
        ProviderCommand::Verify,
    )
    .await
}

/// Refuses a provider's certifications.
#[utoipa::path(post, path = "/api/v1/admin/providers/{provider_id}/reject", tag = "marketplace",
    params(("provider_id" = String, Path, description = "the provider's user id")),
    request_body = RejectProvider, security(("bearer" = [])),
    responses((status = 200, body = VerificationView), (status = 404, description = "no such provider"),
              (status = 409, description = "not pending verification (`urn:ordo:problem:not_pending_verification`)")))]
pub async fn reject_provider(
    State(state): State<AppState>,
    admin: AdminUser,
    RequestId(request_id): RequestId,
    Path(provider_id): Path<String>,
    ApiJson(body): ApiJson<RejectProvider>,
) -> Result<ApiJson<VerificationView>, ApiError> {
    let reason = Reason::parse(&body.reason).map_err(invalid)?;
    decide(
        &state,
        &admin,
        &request_id,
        &provider_id,
        ProviderCommand::Reject { reason },
    )
    .await
}
