//! [`Caller`]: who is behind a checked access token, and what their role lets them do.

use uuid::Uuid;

use crate::domain::Role;

/// An authenticated caller, as its access token describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The account id (`sub`).
    pub user_id: Uuid,
    /// The normalised email address.
    pub email: String,
    /// The role granted when the token was issued.
    pub role: Role,
}

impl Caller {
    /// Whether the caller is an admin.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether the caller may act as `role`: they have it, or they are an admin, who may
    /// do everything.
    pub fn may_act_as(&self, role: Role) -> bool {
        self.is_admin() || self.role == role
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: Role) -> Caller {
        Caller {
            user_id: Uuid::new_v4(),
            email: "ada@example.com".into(),
            role,
        }
    }

    #[test]
    fn admins_may_act_as_every_role() {
        let admin = caller(Role::Admin);
        assert!(admin.is_admin());
        assert!(admin.may_act_as(Role::Merchant));
        assert!(admin.may_act_as(Role::Customer));
    }

    #[test]
    fn other_roles_act_only_as_themselves() {
        let merchant = caller(Role::Merchant);
        assert!(!merchant.is_admin());
        assert!(merchant.may_act_as(Role::Merchant));
        assert!(!merchant.may_act_as(Role::Customer));
        assert!(!caller(Role::Customer).may_act_as(Role::Admin));
    }
}
