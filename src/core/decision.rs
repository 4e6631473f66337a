//! The credit decision for one order amount against one account. The guard enforces the same rule
//! atomically in a single UPDATE; this is the explanation `credit.check` gives and the guard uses to
//! word its refusal, so both always agree.
use rust_decimal::Decimal;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Hold,
    Blacklisted,
}

impl Status {
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "active" => Some(Status::Active),
            "hold" => Some(Status::Hold),
            "blacklisted" => Some(Status::Blacklisted),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    NoAccount,
    Blacklisted,
    OnHold,
    OverLimit,
}

impl Reason {
    /// Stable machine-readable code, as returned in `credit.check(...).reasons`.
    pub fn code(self) -> &'static str {
        match self {
            Reason::NoAccount => "no_credit_account",
            Reason::Blacklisted => "blacklisted",
            Reason::OnHold => "on_hold",
            Reason::OverLimit => "over_limit",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub credit_limit: Decimal,
    pub exposure: Decimal,
    pub status: Status,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub reasons: Vec<Reason>,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.reasons.is_empty()
    }
    pub fn word(&self) -> &'static str {
        if self.allowed() { "accept" } else { "reject" }
    }
}

/// Every reason that applies, most severe first. An order exactly at the limit is accepted.
pub fn decide(account: Option<&Account>, amount: Decimal) -> Decision {
    let Some(a) = account else {
        return Decision { reasons: vec![Reason::NoAccount] };
    };
    let mut reasons = Vec::new();
    match a.status {
        Status::Blacklisted => reasons.push(Reason::Blacklisted),
        Status::Hold => reasons.push(Reason::OnHold),
        Status::Active => {}
    }
    if a.exposure + amount > a.credit_limit {
        reasons.push(Reason::OverLimit);
    }
    Decision { reasons }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acct(limit: i64, exposure: i64, status: Status) -> Account {
        Account { credit_limit: limit.into(), exposure: exposure.into(), status }
    }

    #[test]
    fn exactly_at_limit_is_accepted() {
        let d = decide(Some(&acct(1000, 600, Status::Active)), 400.into());
        assert!(d.allowed());
        assert_eq!(d.word(), "accept");
        let d = decide(Some(&acct(1000, 600, Status::Active)), Decimal::new(40001, 2));
        assert_eq!(d.reasons, vec![Reason::OverLimit]);
    }

    #[test]
    fn every_reason_is_listed() {
        let d = decide(Some(&acct(100, 90, Status::Blacklisted)), 50.into());
        assert_eq!(d.reasons, vec![Reason::Blacklisted, Reason::OverLimit]);
        let d = decide(Some(&acct(100, 0, Status::Hold)), 1.into());
        assert_eq!(d.reasons, vec![Reason::OnHold]);
        assert_eq!(decide(None, 1.into()).reasons, vec![Reason::NoAccount]);
    }

    #[test]
    fn zero_limit_means_no_credit_but_prepayment_counts() {
        assert!(!decide(Some(&acct(0, 0, Status::Active)), 1.into()).allowed());
        // unapplied prepayment makes exposure negative
        assert!(decide(Some(&acct(0, -500, Status::Active)), 500.into()).allowed());
    }
}
