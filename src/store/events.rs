//! `credit.event`, the credit history: the one place Rust appends to it, and the reason a change of
//! an account is recorded with. Events reach the outbox and the audit chain when their transaction
//! commits (`credit._event_publish`, sql/audit.sql). Set-based steps that create many events at
//! once (collections) append them in their own statements, in the `.sql` files next to their code.
use crate::pg::error::OrRaise;
use pgrx::datum::DatumWithOid;
use pgrx::spi::SpiClient;
use pgrx::JsonB;

/// One event: its kind, the customer, an optional reason, and what `after` holds, as pairs of a
/// key and a typed value, and of a key and JSON text built in SQL (numbers stay exact: jsonb is
/// built in SQL, never through a float).
pub struct Event<'a> {
    pub kind: &'a str,
    pub customer: &'a str,
    pub reason: Option<&'a str>,
    pub after: Vec<(&'static str, DatumWithOid<'a>)>,
    pub json: Vec<(&'static str, String)>,
}

/// Appends the event; the actor is the person behind the call, acting as the caller.
pub fn append(c: &mut SpiClient<'_>, e: Event<'_>) {
    let n = e.after.len();
    let pairs: Vec<String> = (0..n)
        .map(|i| format!("'{}', ${}", e.after[i].0, i + 4))
        .chain(e.json.iter().enumerate().map(|(j, (key, _))| format!("'{key}', ${}::pg_catalog.jsonb", n + j + 4)))
        .collect();
    let sql = format!(
        "INSERT INTO credit.event (kind, customer, reason, after, acting_as) \
         VALUES ($1, $2, $3, pg_catalog.jsonb_build_object({}), credit._caller())",
        pairs.join(", ")
    );
    let mut args: Vec<DatumWithOid<'_>> = vec![e.kind.into(), e.customer.into(), e.reason.into()];
    args.extend(e.after.into_iter().map(|(_, v)| v));
    args.extend(e.json.into_iter().map(|(_, v)| v.into()));
    c.update(&sql, None, &args).or_raise();
}

/// Appends refused orders spooled by the guard, in spool order; each line carries its own actor
/// (the refusing session's), not the recorder's.
pub fn append_refused_orders(c: &mut SpiClient<'_>, lines: Vec<JsonB>) {
    c.update(
        "INSERT INTO credit.event (kind, customer, reason, after, actor, acting_as, application_name) \
         SELECT 'order_refused', e ->> 'customer', e ->> 'message', \
                jsonb_build_object('table', e -> 'table', 'amount', (e ->> 'amount')::numeric, \
                                   'reasons', e -> 'reasons', 'group', e -> 'group', 'refused_at', e -> 'refused_at'), \
                coalesce(e ->> 'actor', session_user), coalesce(e ->> 'acting_as', current_user), \
                e ->> 'application_name' \
           FROM unnest($1::jsonb[]) WITH ORDINALITY AS x(e, n) ORDER BY n",
        None,
        &[lines.into()],
    )
    .or_raise();
}

/// Runs `f` with `reason` set for the transaction's account changes (credit._account_history
/// records it with each), and clears it afterwards.
pub fn with_reason<R>(c: &mut SpiClient<'_>, reason: &str, f: impl FnOnce(&mut SpiClient<'_>) -> R) -> R {
    c.update("SELECT pg_catalog.set_config('credit.reason', $1, true)", None, &[reason.into()]).or_raise();
    let r = f(c);
    c.update("SELECT pg_catalog.set_config('credit.reason', '', true)", None, &[]).or_raise();
    r
}
