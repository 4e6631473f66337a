//! A refusal: why an order did not fit, the message a client gets (23514 with the numbers), and
//! the record that outlives the refused transaction (guard::recording).
use crate::guard::recording::{self, RefusedOrder};
use crate::pg::error::{self, Code};
use crate::store::account::Loaded;
use credit_core::decision::Reason;
use pgrx::pg_sys::Oid;
use pgrx::AnyNumeric;

/// Why an order did not fit, with the numbers for the message.
pub struct Refusal {
    pub customer: String,
    pub reasons: Vec<Reason>,
    /// The account as decided on (boxed: a refusal travels in a Result on the hot path).
    pub loaded: Option<Box<Loaded>>,
    pub amount: AnyNumeric,
    /// The customer is a group head refused for its group.
    pub group: bool,
    /// What the amount is, for the message: "order amount", "order increase", ...
    pub change: &'static str,
}

impl Refusal {
    pub fn new(
        customer: &str,
        reasons: Vec<Reason>,
        loaded: Option<Loaded>,
        amount: &AnyNumeric,
        group: bool,
    ) -> Refusal {
        let change = if loaded.is_none() { "order amount" } else { "amount" };
        Refusal {
            customer: customer.to_string(),
            reasons,
            loaded: loaded.map(Box::new),
            amount: amount.clone(),
            group,
            change,
        }
    }

    fn first_reason(&self) -> Reason {
        self.reasons.first().copied().unwrap_or(Reason::OverLimit)
    }

    /// The error's message.
    pub fn message(&self) -> String {
        let customer = &self.customer;
        match self.first_reason() {
            Reason::NoAccount => format!("customer \"{customer}\" has no credit account: order refused"),
            Reason::Blacklisted => format!("customer \"{customer}\" is blacklisted: order refused"),
            Reason::OnHold => format!("customer \"{customer}\" is on credit hold: order refused"),
            Reason::Overdue => format!("customer \"{customer}\" has invoices too far past due: order refused"),
            Reason::PrepaymentRequired => format!("customer \"{customer}\" must pay in advance: order refused"),
            Reason::OverLimit => format!("order exceeds the credit limit of customer \"{customer}\""),
            Reason::GroupBlocked => format!("credit group \"{customer}\" is not active: order refused"),
            Reason::GroupOverLimit => format!("order exceeds the shared credit limit of group \"{customer}\""),
        }
    }

    /// The error's detail: the limit, the exposure, the amount and what is over.
    pub fn detail(&self) -> String {
        let amount = &self.amount;
        let Some(l) = &self.loaded else {
            return format!("{} {amount}; there is no row for this customer in credit.account.", self.change);
        };
        let after = l.exposure.clone() + amount.clone();
        let usable = l.usable_limit();
        let over = after.clone() - usable.clone();
        let mut d = if self.group {
            format!(
                "Group limit {usable}, group exposure {}, amount {amount}: group exposure would be {after}",
                l.exposure
            )
        } else {
            format!(
                "Credit limit {usable}, exposure {}, {} {amount}: exposure would be {after}",
                l.exposure, self.change
            )
        };
        if over > AnyNumeric::from(0) {
            d.push_str(&format!(", {over} over the limit"));
        }
        if let (Some(days), Some(block)) = (l.account.days_past_due, l.account.overdue_block_days) {
            if days > block {
                d.push_str(&format!("; the oldest open invoice is {days} days past due (policy allows {block})"));
            }
        }
        d.push('.');
        if self.reasons.len() > 1 {
            d.push_str(&format!(" Reasons: {}.", self.reason_codes().join(", ")));
        }
        d
    }

    /// The error's hint: what to do about it.
    pub fn hint(&self) -> &'static str {
        match self.first_reason() {
            Reason::NoAccount => "Create a credit account for the customer (INSERT INTO credit.account), or take the order as cash in advance.",
            Reason::Blacklisted => "The customer is blacklisted; only a credit manager can reinstate the account.",
            Reason::OnHold => "The account is on hold; a credit manager must set it back to active before new credit orders.",
            Reason::Overdue => "Collect the overdue invoices first (credit.aging_detail lists them).",
            Reason::PrepaymentRequired => "The customer's policy requires payment in advance: post the prepayment with credit.post_payment first.",
            Reason::OverLimit => "Reduce the order, collect payment first, or ask a credit manager to raise the limit. credit.check(customer, amount) shows the numbers.",
            Reason::GroupBlocked => "The customer's credit group is on hold, blacklisted or overdue; a credit manager must clear the group account.",
            Reason::GroupOverLimit => "The group's members together would exceed the group's limit. credit.check(customer, amount) shows the numbers.",
        }
    }

    pub fn reason_codes(&self) -> Vec<&'static str> {
        self.reasons.iter().map(|x| x.code()).collect()
    }

    /// Records the refusal (outside the transaction the error rolls back) and raises 23514.
    pub fn raise(&self, table: Oid) -> ! {
        let message = self.message();
        recording::record(&RefusedOrder {
            customer: &self.customer,
            amount: self.amount.to_string(),
            reasons: self.reason_codes(),
            group: self.group,
            message: &message,
            table,
        });
        error::raise(Code::ERRCODE_CHECK_VIOLATION, message, Some(self.detail()), Some(self.hint()))
    }
}
