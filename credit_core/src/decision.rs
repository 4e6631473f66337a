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
    Overdue,
    PrepaymentRequired,
    OverLimit,
    GroupBlocked,
    GroupOverLimit,
}

impl Reason {
    /// Stable machine-readable code, as returned in `credit.check(...).reasons`.
    pub fn code(self) -> &'static str {
        match self {
            Reason::NoAccount => "no_credit_account",
            Reason::Blacklisted => "blacklisted",
            Reason::OnHold => "on_hold",
            Reason::Overdue => "overdue",
            Reason::PrepaymentRequired => "prepayment_required",
            Reason::OverLimit => "over_limit",
            Reason::GroupBlocked => "group_not_active",
            Reason::GroupOverLimit => "group_over_limit",
        }
    }
}

/// One account as the decision sees it. `credit_limit` is the limit in force (a temporary limit
/// while it lasts, capped by the policy maximum); `exposure` includes a group head's members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub credit_limit: Decimal,
    pub exposure: Decimal,
    pub status: Status,
    /// Policy: only money already received may cover orders (the limit counts as 0).
    pub prepayment_only: bool,
    /// Days the oldest open invoice is past due today (None: nothing open).
    pub days_past_due: Option<i32>,
    /// Policy: new credit orders are refused while any invoice is more than this many days late.
    pub overdue_block_days: Option<i32>,
    /// Policy: warn when an order takes exposure to this share of the limit or beyond.
    pub warn_ratio: Option<Decimal>,
}

impl Account {
    /// An account with a limit, an exposure and a status, and no policy rules.
    #[cfg(test)]
    fn simple(credit_limit: Decimal, exposure: Decimal, status: Status) -> Account {
        Account {
            credit_limit,
            exposure,
            status,
            prepayment_only: false,
            days_past_due: None,
            overdue_block_days: None,
            warn_ratio: None,
        }
    }

    /// The limit orders are held against: 0 for prepayment-only customers.
    pub fn usable_limit(&self) -> Decimal {
        if self.prepayment_only {
            Decimal::ZERO
        } else {
            self.credit_limit
        }
    }

    pub fn overdue(&self) -> bool {
        matches!((self.days_past_due, self.overdue_block_days), (Some(d), Some(b)) if d > b)
    }

    /// Crossing the warning line with this order: below it before, at or above it after.
    pub fn crosses_warning(&self, amount: Decimal) -> bool {
        let Some(r) = self.warn_ratio else { return false };
        if self.usable_limit() <= Decimal::ZERO {
            return false; // no credit: nothing to warn about
        }
        let line = self.usable_limit() * r;
        self.exposure < line && self.exposure + amount >= line && amount > Decimal::ZERO
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warning {
    NearLimit,
}

impl Warning {
    pub fn code(self) -> &'static str {
        match self {
            Warning::NearLimit => "near_limit",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub reasons: Vec<Reason>,
    pub warnings: Vec<Warning>,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.reasons.is_empty()
    }
    pub fn word(&self) -> &'static str {
        if self.allowed() {
            "accept"
        } else {
            "reject"
        }
    }
}

/// Every reason that applies, most severe first; `group` is the customer's group head, whose
/// status and limit (over the whole group's exposure) apply too. An order exactly at the limit is
/// accepted.
pub fn decide(account: Option<&Account>, group: Option<&Account>, amount: Decimal) -> Decision {
    let Some(a) = account else {
        return Decision { reasons: vec![Reason::NoAccount], warnings: vec![] };
    };
    let mut reasons = Vec::new();
    match a.status {
        Status::Blacklisted => reasons.push(Reason::Blacklisted),
        Status::Hold => reasons.push(Reason::OnHold),
        Status::Active => {}
    }
    if a.overdue() {
        reasons.push(Reason::Overdue);
    }
    if a.exposure + amount > a.usable_limit() {
        reasons.push(if a.prepayment_only { Reason::PrepaymentRequired } else { Reason::OverLimit });
    }
    let mut warnings = Vec::new();
    if a.crosses_warning(amount) || group.is_some_and(|g| g.crosses_warning(amount)) {
        warnings.push(Warning::NearLimit);
    }
    if let Some(g) = group {
        if g.status != Status::Active || g.overdue() {
            reasons.push(Reason::GroupBlocked);
        }
        if g.exposure + amount > g.usable_limit() {
            reasons.push(Reason::GroupOverLimit);
        }
    }
    if !reasons.is_empty() {
        warnings.clear();
    }
    Decision { reasons, warnings }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acct(limit: i64, exposure: i64, status: Status) -> Account {
        Account::simple(limit.into(), exposure.into(), status)
    }

    #[test]
    fn exactly_at_limit_is_accepted() {
        let d = decide(Some(&acct(1000, 600, Status::Active)), None, 400.into());
        assert!(d.allowed());
        assert_eq!(d.word(), "accept");
        let d = decide(Some(&acct(1000, 600, Status::Active)), None, Decimal::new(40001, 2));
        assert_eq!(d.reasons, vec![Reason::OverLimit]);
    }

    #[test]
    fn every_reason_is_listed() {
        let d = decide(Some(&acct(100, 90, Status::Blacklisted)), None, 50.into());
        assert_eq!(d.reasons, vec![Reason::Blacklisted, Reason::OverLimit]);
        let d = decide(Some(&acct(100, 0, Status::Hold)), None, 1.into());
        assert_eq!(d.reasons, vec![Reason::OnHold]);
        assert_eq!(decide(None, None, 1.into()).reasons, vec![Reason::NoAccount]);
    }

    #[test]
    fn zero_limit_means_no_credit_but_prepayment_counts() {
        assert!(!decide(Some(&acct(0, 0, Status::Active)), None, 1.into()).allowed());
        // unapplied prepayment makes exposure negative
        assert!(decide(Some(&acct(0, -500, Status::Active)), None, 500.into()).allowed());
    }

    #[test]
    fn policy_rules() {
        let mut a = acct(1000, 0, Status::Active);
        a.prepayment_only = true;
        assert_eq!(decide(Some(&a), None, 1.into()).reasons, vec![Reason::PrepaymentRequired]);
        a.exposure = (-300).into(); // 300 paid in advance
        assert!(decide(Some(&a), None, 300.into()).allowed());
        let mut a = acct(1000, 0, Status::Active);
        a.overdue_block_days = Some(30);
        a.days_past_due = Some(30);
        assert!(decide(Some(&a), None, 1.into()).allowed());
        a.days_past_due = Some(31);
        assert_eq!(decide(Some(&a), None, 1.into()).reasons, vec![Reason::Overdue]);
    }

    #[test]
    fn warning_on_crossing_only() {
        let mut a = acct(1000, 700, Status::Active);
        a.warn_ratio = Some(Decimal::new(8, 1));
        let d = decide(Some(&a), None, 100.into());
        assert_eq!((d.allowed(), d.warnings.clone()), (true, vec![Warning::NearLimit]));
        assert!(decide(Some(&a), None, 99.into()).warnings.is_empty());
        a.exposure = 800.into(); // already past the line: no new warning
        assert!(decide(Some(&a), None, 10.into()).warnings.is_empty());
    }

    #[test]
    fn group_limits_apply_too() {
        let a = acct(1000, 0, Status::Active);
        let g = acct(1500, 1000, Status::Active);
        assert_eq!(decide(Some(&a), Some(&g), 600.into()).reasons, vec![Reason::GroupOverLimit]);
        assert!(decide(Some(&a), Some(&g), 500.into()).allowed());
        let held = acct(1500, 0, Status::Hold);
        assert_eq!(decide(Some(&a), Some(&held), 1.into()).reasons, vec![Reason::GroupBlocked]);
    }
}
