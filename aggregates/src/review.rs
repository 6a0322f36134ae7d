//! Reviews of goods: the buyer of a delivered (or completed) order line reviews it once,
//! with a rating from 1 to 5, a comment, dimension ratings and images, and may add one
//! follow-up (追评). A review is addressed by its order line ([`review_id_of`]), so a
//! second review of the same line is the same aggregate and is refused.
//!
//! ```text
//! published <-> hidden (reports reached the threshold; an admin publishes it again)
//!     ^   \         \
//!     |    \-> pending_moderation (a follow-up with a blocked word)
//! pending_moderation (a blocked word) -> published | rejected   (an admin decides)
//! ```
//!
//! Moderation is decided outside the aggregate by [`flags`] against the configured
//! sensitive words; the command carries the verdict. Reports count once per reporter.

use std::collections::{BTreeMap, BTreeSet};

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::common::{
    DomainError, ErrorKind, MediaUrl, OrderId, Reason, ReviewComment, ReviewId, Sku, SpecName,
    UserId,
};
use crate::service_order::Stars;

/// Most images one review may carry.
pub const MAX_IMAGES: usize = 9;
/// Most dimension ratings one review may carry.
pub const MAX_DIMENSIONS: usize = 10;

/// The review of one order line: derived, so a line is reviewed once.
pub fn review_id_of(order_id: OrderId, sku: &Sku) -> ReviewId {
    let name = format!("review:1:{}", sku.as_str());
    ReviewId::from(Uuid::new_v5(order_id.as_uuid(), name.as_bytes()))
}

/// Whether `text` holds one of the `blocked` words (case-insensitive).
pub fn flags(text: &str, blocked: &[String]) -> bool {
    let text = text.to_lowercase();
    blocked
        .iter()
        .map(|word| word.trim().to_lowercase())
        .any(|word| !word.is_empty() && text.contains(&word))
}

/// Where a review stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    /// Shown with the product and counted in its rating.
    Published,
    /// Held for an admin: it holds a sensitive word.
    PendingModeration,
    /// An admin refused it.
    Rejected,
    /// Hidden after enough reports, until an admin decides.
    Hidden,
}

impl ReviewStatus {
    /// The snake_case name of the status.
    pub fn as_str(&self) -> &'static str {
        match self {
            ReviewStatus::Published => "published",
            ReviewStatus::PendingModeration => "pending_moderation",
            ReviewStatus::Rejected => "rejected",
            ReviewStatus::Hidden => "hidden",
        }
    }
}

impl std::fmt::Display for ReviewStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a buyer says of an order line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewContent {
    /// The overall rating.
    pub rating: Stars,
    /// What the buyer wrote (may be empty).
    pub comment: ReviewComment,
    /// Ratings of named aspects (quality, packaging...).
    pub dimensions: BTreeMap<SpecName, Stars>,
    /// Pictures.
    pub images: Vec<MediaUrl>,
}

/// Commands accepted by a [`Review`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ReviewCommand {
    /// The buyer reviews the line.
    Submit {
        /// The review's id: [`review_id_of`] the line.
        review_id: ReviewId,
        /// The order.
        order_id: OrderId,
        /// The line's SKU.
        sku: Sku,
        /// The buyer.
        author_id: UserId,
        /// What they say.
        content: ReviewContent,
        /// Whether it holds a sensitive word ([`flags`]).
        flagged: bool,
    },
    /// The buyer adds their one follow-up.
    FollowUp {
        /// Who: only the author may.
        by: UserId,
        /// What they add.
        comment: ReviewComment,
        /// Whether it holds a sensitive word.
        flagged: bool,
    },
    /// An admin publishes a held or hidden review.
    Publish,
    /// An admin refuses a review.
    Reject {
        /// Why.
        reason: Reason,
    },
    /// A user reports the review.
    Report {
        /// Who reports.
        by: UserId,
        /// Reports that hide a published review.
        hide_at: u32,
    },
}

/// Events of a [`Review`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ReviewEvent {
    /// The buyer reviewed the line.
    ReviewSubmitted {
        /// The review's id.
        review_id: ReviewId,
        /// The order.
        order_id: OrderId,
        /// The line's SKU.
        sku: Sku,
        /// The buyer.
        author_id: UserId,
        /// What they said.
        content: ReviewContent,
        /// Published, or held for moderation.
        status: ReviewStatus,
    },
    /// The buyer added their follow-up.
    ReviewFollowedUp {
        /// What they added.
        comment: ReviewComment,
        /// The review's status after it.
        status: ReviewStatus,
    },
    /// An admin published the review.
    ReviewPublished {},
    /// An admin refused the review.
    ReviewRejected {
        /// Why.
        reason: Reason,
    },
    /// A user reported the review.
    ReviewReported {
        /// Who.
        by: UserId,
        /// Reports so far.
        reports: u32,
    },
    /// Enough reports hid the review until an admin decides.
    ReviewHidden {},
}

impl DomainEvent for ReviewEvent {
    fn event_type(&self) -> String {
        match self {
            ReviewEvent::ReviewSubmitted { .. } => "ReviewSubmitted",
            ReviewEvent::ReviewFollowedUp { .. } => "ReviewFollowedUp",
            ReviewEvent::ReviewPublished {} => "ReviewPublished",
            ReviewEvent::ReviewRejected { .. } => "ReviewRejected",
            ReviewEvent::ReviewReported { .. } => "ReviewReported",
            ReviewEvent::ReviewHidden {} => "ReviewHidden",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

/// Why a [`ReviewCommand`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    /// The review was never written.
    #[error("review not found")]
    NotFound,
    /// The line was reviewed already.
    #[error("this order line was reviewed already")]
    AlreadyReviewed,
    /// Too many images or dimensions.
    #[error("a review carries at most 9 images and 10 dimensions")]
    TooMuch,
    /// Someone other than the author.
    #[error("only the review's author may do this")]
    NotTheAuthor,
    /// The one follow-up was written already.
    #[error("the review has its follow-up already")]
    AlreadyFollowedUp,
    /// The review's status does not allow the action.
    #[error("cannot {action} a review that is {from}")]
    InvalidTransition {
        /// Its status.
        from: ReviewStatus,
        /// What was attempted.
        action: &'static str,
    },
}

impl ReviewError {
    /// Stable snake_case code of the refusal.
    pub fn code(&self) -> &'static str {
        match self {
            ReviewError::NotFound => "review_not_found",
            ReviewError::AlreadyReviewed => "already_reviewed",
            ReviewError::TooMuch => "too_many_items",
            ReviewError::NotTheAuthor => "not_the_author",
            ReviewError::AlreadyFollowedUp => "already_followed_up",
            ReviewError::InvalidTransition { .. } => "invalid_transition",
        }
    }

    /// Broad class of the refusal.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ReviewError::NotFound => ErrorKind::NotFound,
            ReviewError::TooMuch => ErrorKind::Invalid,
            ReviewError::AlreadyReviewed
            | ReviewError::NotTheAuthor
            | ReviewError::AlreadyFollowedUp
            | ReviewError::InvalidTransition { .. } => ErrorKind::Refused,
        }
    }
}

impl DomainError for ReviewError {
    fn code(&self) -> &'static str {
        ReviewError::code(self)
    }
    fn kind(&self) -> ErrorKind {
        ReviewError::kind(self)
    }
}

/// A review.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Review {
    author_id: Option<UserId>,
    sku: Option<Sku>,
    status: Option<ReviewStatus>,
    followed_up: bool,
    reporters: BTreeSet<UserId>,
}

impl Review {
    /// Its status, once written.
    pub fn status(&self) -> Option<ReviewStatus> {
        self.status
    }

    /// Its author, once written.
    pub fn author_id(&self) -> Option<UserId> {
        self.author_id
    }

    /// The SKU reviewed, once written.
    pub fn sku(&self) -> Option<&Sku> {
        self.sku.as_ref()
    }

    /// Reports so far.
    pub fn reports(&self) -> u32 {
        u32::try_from(self.reporters.len()).unwrap_or(u32::MAX)
    }
}

impl Aggregate for Review {
    const TYPE: &'static str = "review";
    type Command = ReviewCommand;
    type Event = ReviewEvent;
    type Error = ReviewError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        use ReviewStatus as S;
        let status = self.status;
        let events = match command {
            ReviewCommand::Submit {
                review_id,
                order_id,
                sku,
                author_id,
                content,
                flagged,
            } => {
                if status.is_some() {
                    return Err(ReviewError::AlreadyReviewed);
                }
                if content.images.len() > MAX_IMAGES || content.dimensions.len() > MAX_DIMENSIONS {
                    return Err(ReviewError::TooMuch);
                }
                vec![ReviewEvent::ReviewSubmitted {
                    review_id,
                    order_id,
                    sku,
                    author_id,
                    content,
                    status: if flagged {
                        S::PendingModeration
                    } else {
                        S::Published
                    },
                }]
            }
            ReviewCommand::FollowUp {
                by,
                comment,
                flagged,
            } => {
                let status = status.ok_or(ReviewError::NotFound)?;
                if self.author_id != Some(by) {
                    return Err(ReviewError::NotTheAuthor);
                }
                if self.followed_up {
                    return Err(ReviewError::AlreadyFollowedUp);
                }
                if status == S::Rejected {
                    return Err(ReviewError::InvalidTransition {
                        from: status,
                        action: "follow up",
                    });
                }
                let after = if flagged && status == S::Published {
                    S::PendingModeration
                } else {
                    status
                };
                vec![ReviewEvent::ReviewFollowedUp {
                    comment,
                    status: after,
                }]
            }
            ReviewCommand::Publish => match status.ok_or(ReviewError::NotFound)? {
                S::PendingModeration | S::Hidden => vec![ReviewEvent::ReviewPublished {}],
                S::Published => return Ok(()),
                from => {
                    return Err(ReviewError::InvalidTransition {
                        from,
                        action: "publish",
                    })
                }
            },
            ReviewCommand::Reject { reason } => match status.ok_or(ReviewError::NotFound)? {
                S::Rejected => return Ok(()),
                _ => vec![ReviewEvent::ReviewRejected { reason }],
            },
            ReviewCommand::Report { by, hide_at } => {
                let status = status.ok_or(ReviewError::NotFound)?;
                if self.reporters.contains(&by) {
                    return Ok(());
                }
                let reports = self.reports().saturating_add(1);
                let mut events = vec![ReviewEvent::ReviewReported { by, reports }];
                if status == S::Published && reports >= hide_at.max(1) {
                    events.push(ReviewEvent::ReviewHidden {});
                }
                events
            }
        };
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        use ReviewStatus as S;
        match event {
            ReviewEvent::ReviewSubmitted {
                author_id,
                sku,
                status,
                ..
            } => {
                self.author_id = Some(author_id);
                self.sku = Some(sku);
                self.status = Some(status);
            }
            ReviewEvent::ReviewFollowedUp { status, .. } => {
                self.followed_up = true;
                self.status = Some(status);
            }
            ReviewEvent::ReviewPublished {} => self.status = Some(S::Published),
            ReviewEvent::ReviewRejected { .. } => self.status = Some(S::Rejected),
            ReviewEvent::ReviewReported { by, .. } => {
                self.reporters.insert(by);
            }
            ReviewEvent::ReviewHidden {} => self.status = Some(S::Hidden),
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::{AggregateTestExecutor, TestFramework};

    use super::*;
    use crate::common::fixtures::*;

    fn given(events: Vec<ReviewEvent>) -> AggregateTestExecutor<Review> {
        TestFramework::<Review>::with(()).given(events)
    }

    fn content() -> ReviewContent {
        ReviewContent {
            rating: Stars::parse(4, "rating").unwrap(),
            comment: ReviewComment::parse("Sturdy mug").unwrap(),
            dimensions: BTreeMap::from([(
                SpecName::parse("quality").unwrap(),
                Stars::parse(5, "quality").unwrap(),
            )]),
            images: vec![],
        }
    }

    fn submit(flagged: bool) -> ReviewCommand {
        ReviewCommand::Submit {
            review_id: id(1),
            order_id: id(2),
            sku: sku("MUG"),
            author_id: id(3),
            content: content(),
            flagged,
        }
    }

    fn submitted(status: ReviewStatus) -> ReviewEvent {
        ReviewEvent::ReviewSubmitted {
            review_id: id(1),
            order_id: id(2),
            sku: sku("MUG"),
            author_id: id(3),
            content: content(),
            status,
        }
    }

    fn comment(text: &str) -> ReviewComment {
        ReviewComment::parse(text).unwrap()
    }

    #[test]
    fn a_line_is_reviewed_once_published_or_held() {
        given(vec![])
            .when(submit(false))
            .then_expect_events(vec![submitted(ReviewStatus::Published)]);
        given(vec![])
            .when(submit(true))
            .then_expect_events(vec![submitted(ReviewStatus::PendingModeration)]);
        given(vec![submitted(ReviewStatus::Published)])
            .when(submit(false))
            .then_expect_error(ReviewError::AlreadyReviewed);
    }

    #[test]
    fn one_follow_up_by_the_author_and_a_flagged_one_is_held() {
        given(vec![submitted(ReviewStatus::Published)])
            .when(ReviewCommand::FollowUp {
                by: id(3),
                comment: comment("Still fine"),
                flagged: false,
            })
            .then_expect_events(vec![ReviewEvent::ReviewFollowedUp {
                comment: comment("Still fine"),
                status: ReviewStatus::Published,
            }]);
        given(vec![submitted(ReviewStatus::Published)])
            .when(ReviewCommand::FollowUp {
                by: id(3),
                comment: comment("bad word"),
                flagged: true,
            })
            .then_expect_events(vec![ReviewEvent::ReviewFollowedUp {
                comment: comment("bad word"),
                status: ReviewStatus::PendingModeration,
            }]);
        given(vec![submitted(ReviewStatus::Published)])
            .when(ReviewCommand::FollowUp {
                by: id(9),
                comment: comment("x"),
                flagged: false,
            })
            .then_expect_error(ReviewError::NotTheAuthor);
        given(vec![
            submitted(ReviewStatus::Published),
            ReviewEvent::ReviewFollowedUp {
                comment: comment("Still fine"),
                status: ReviewStatus::Published,
            },
        ])
        .when(ReviewCommand::FollowUp {
            by: id(3),
            comment: comment("again"),
            flagged: false,
        })
        .then_expect_error(ReviewError::AlreadyFollowedUp);
    }

    #[test]
    fn an_admin_publishes_or_rejects_a_held_review() {
        given(vec![submitted(ReviewStatus::PendingModeration)])
            .when(ReviewCommand::Publish)
            .then_expect_events(vec![ReviewEvent::ReviewPublished {}]);
        let reason = Reason::parse("insulting").unwrap();
        given(vec![submitted(ReviewStatus::PendingModeration)])
            .when(ReviewCommand::Reject {
                reason: reason.clone(),
            })
            .then_expect_events(vec![ReviewEvent::ReviewRejected {
                reason: reason.clone(),
            }]);
        given(vec![
            submitted(ReviewStatus::PendingModeration),
            ReviewEvent::ReviewRejected { reason },
        ])
        .when(ReviewCommand::Publish)
        .then_expect_error(ReviewError::InvalidTransition {
            from: ReviewStatus::Rejected,
            action: "publish",
        });
    }

    #[test]
    fn reports_count_once_per_user_and_hide_at_the_threshold() {
        let report = |by: u128| ReviewCommand::Report {
            by: id(by),
            hide_at: 2,
        };
        given(vec![submitted(ReviewStatus::Published)])
            .when(report(7))
            .then_expect_events(vec![ReviewEvent::ReviewReported {
                by: id(7),
                reports: 1,
            }]);
        let once = vec![
            submitted(ReviewStatus::Published),
            ReviewEvent::ReviewReported {
                by: id(7),
                reports: 1,
            },
        ];
        given(once.clone())
            .when(report(7))
            .then_expect_events(vec![]);
        given(once).when(report(8)).then_expect_events(vec![
            ReviewEvent::ReviewReported {
                by: id(8),
                reports: 2,
            },
            ReviewEvent::ReviewHidden {},
        ]);
    }

    #[test]
    fn blocked_words_are_found_whatever_their_case() {
        let blocked = vec!["scam".to_string(), " ".to_string()];
        assert!(flags("What a SCAM!", &blocked));
        assert!(!flags("Lovely mug", &blocked));
        assert!(!flags("Lovely mug", &[]));
        let order: OrderId = id(2);
        assert_eq!(
            review_id_of(order, &sku("MUG")),
            review_id_of(order, &sku("MUG"))
        );
        assert_ne!(
            review_id_of(order, &sku("MUG")),
            review_id_of(order, &sku("TEA"))
        );
    }
}
