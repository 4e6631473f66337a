//! `credit.event`, the credit history: the one place Rust appends to it, and the reason a change of
//! an account is recorded with. Events reach the outbox and the audit chain when their transaction
//! commits (`credit._event_publish`, sql/audit.sql). Set-based steps that create many events at
//! once (collections) append them in their own statements, in the `.sql` files next to their code.
use crate::pg::error::OrRaise;
use crate::privileges;
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
    set_reason(c, reason);
    let r = f(c);
    set_reason(c, "");
    r
}

/// Sets `reason` ('' clears it) for the transaction's account changes from here on. On Citus's
/// coordinator the account rows change on their workers, where credit._account_history records
/// them: the reason goes there too, with the person and the caller behind the change
/// (credit._person() and credit._acting_as() record them there, privilege checks never read
/// them; Citus connects as pg_credit's owner from inside its functions). Citus passes SET LOCAL on
/// to the workers of the transaction, those it opens later included, when
/// citus.propagate_set_commands is local, and only from inside a DO block or a function run by a
/// query, hence the DO block; set_config stays on the coordinator.
pub fn set_reason(c: &mut SpiClient<'_>, reason: &str) {
    c.update("SELECT pg_catalog.set_config('credit.reason', $1, true)", None, &[reason.into()]).or_raise();
    if !(crate::pg::citus::distributed() && crate::pg::citus::is_coordinator()) {
        return;
    }
    let (person, caller) = if reason.is_empty() {
        (String::new(), String::new())
    } else {
        (privileges::name_of(privileges::person()), privileges::name_of(privileges::caller()))
    };
    c.update(
        "SELECT pg_catalog.set_config('credit.acting_person', $1, true), pg_catalog.set_config('credit.acting_caller', $2, true)",
        None,
        &[person.into(), caller.into()],
    )
    .or_raise();
    // Static text: the values travel in the settings just made, never in the block's source.
    c.update(
        "DO $relay$ DECLARE before pg_catalog.text := pg_catalog.current_setting('citus.propagate_set_commands'); \
         BEGIN \
           PERFORM pg_catalog.set_config('citus.propagate_set_commands', 'local', true); \
           EXECUTE pg_catalog.format('SET LOCAL credit.reason = %L', pg_catalog.current_setting('credit.reason')); \
           EXECUTE pg_catalog.format('SET LOCAL credit.acting_person = %L', pg_catalog.current_setting('credit.acting_person')); \
           EXECUTE pg_catalog.format('SET LOCAL credit.acting_caller = %L', pg_catalog.current_setting('credit.acting_caller')); \
           PERFORM pg_catalog.set_config('citus.propagate_set_commands', before, true); \
         END $relay$",
        None,
        &[],
    )
    .or_raise();
}

/// [`set_reason`] on an SPI connection of its own.
pub fn set_reason_now(reason: &str) {
    pgrx::spi::Spi::connect_mut(|c| set_reason(c, reason));
}
