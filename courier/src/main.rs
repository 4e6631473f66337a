//! pg_credit_courier: plans, claims, sends and reports the messages of pg_credit's outbox
//! (docs/courier.md). Everything it knows lives in the database: the position it planned up to,
//! the leases of what it is sending, every attempt's outcome. So a second courier, or this one
//! restarted after `kill -9`, continues exactly where it stopped.
mod channel;
mod config;

use channel::{Channels, Delivery, Outcome};
use config::Config;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match Config::from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            let help = args.iter().any(|a| a == "--help" || a == "-h");
            eprintln!("{e}");
            std::process::exit(if help { 0 } else { 2 });
        }
    };
    let channels = match Channels::new(&config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("pg_credit_courier: {e}");
            std::process::exit(2);
        }
    };
    let mut wait = Duration::from_millis(500);
    loop {
        match run(&config, &channels) {
            Ok(()) => return,
            Err(e) if config.once => {
                eprintln!("pg_credit_courier: {e}");
                std::process::exit(1);
            }
            Err(e) => {
                // The database went away or refused: try again, a little later each time.
                eprintln!("pg_credit_courier: {e}; reconnecting in {} ms", wait.as_millis());
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    }
}

fn run(config: &Config, channels: &Channels) -> Result<(), String> {
    let mut db = Client::connect(&config.dsn, NoTls).map_err(|e| format!("connecting: {e}"))?;
    db.batch_execute("SET application_name = 'pg_credit_courier'; LISTEN credit_events")
        .map_err(|e| format!("LISTEN: {e}"))?;
    let plan = db.prepare("SELECT events, deliveries FROM credit.courier_plan($1)").map_err(sql_error)?;
    let claim = db
        .prepare(
            "SELECT delivery_id, attempt, channel, address, idempotency_key, kind, customer, language, subject, body, \
                    body_html, attachment_name, attachment, payload::text AS payload, webhook_secret, lease_seconds \
               FROM credit.courier_claim($1, $2)",
        )
        .map_err(sql_error)?;
    let report = db.prepare("SELECT credit.courier_report($1, $2, $3, $4)").map_err(sql_error)?;
    eprintln!("pg_credit_courier {}: started as {}", env!("CARGO_PKG_VERSION"), config.name);
    // Fault injection for the tests: stop dead after this many sends, before recording the last
    // one, as a kill -9 in the worst moment would.
    let crash_after: Option<u64> =
        std::env::var("PG_CREDIT_COURIER_FAULT_ABORT_AFTER_SENDS").ok().and_then(|v| v.parse().ok());
    let mut sends = 0u64;
    loop {
        // Plan the whole outbox first: each call is one transaction that moves the position.
        loop {
            let row = db.query_one(&plan, &[&config.plan_batch]).map_err(sql_error)?;
            let events: i32 = row.get(0);
            if events < config.plan_batch {
                break;
            }
        }
        let mut sent_any = false;
        loop {
            let rows = db.query(&claim, &[&config.name, &config.batch]).map_err(sql_error)?;
            if rows.is_empty() {
                break;
            }
            sent_any = true;
            // Measured on this machine's monotonic clock from the claim, with a margin: a delivery
            // whose lease may have run out is not sent (another courier may be sending it).
            let claimed_at = Instant::now();
            for r in rows {
                let lease = Duration::from_secs_f64(r.get::<_, f64>("lease_seconds").max(1.0) * 0.8);
                let payload: Option<String> = r.get("payload");
                let d = Delivery {
                    id: r.get("delivery_id"),
                    attempt: r.get("attempt"),
                    channel: r.get("channel"),
                    address: r.get("address"),
                    key: r.get("idempotency_key"),
                    kind: r.get("kind"),
                    customer: r.get("customer"),
                    language: r.get("language"),
                    subject: r.get("subject"),
                    body: r.get("body"),
                    body_html: r.get("body_html"),
                    attachment_name: r.get("attachment_name"),
                    attachment: r.get("attachment"),
                    payload: payload.and_then(|p| serde_json::from_str(&p).ok()),
                    secret: r.get("webhook_secret"),
                };
                if claimed_at.elapsed() > lease {
                    let note = "not sent: its lease was about to run out (a slow receiver); retried after the backoff";
                    db.query_one(&report, &[&d.id, &d.attempt, &"temporary", &note]).map_err(sql_error)?;
                    continue;
                }
                let outcome = channels.send(&d);
                sends += 1;
                if crash_after == Some(sends) {
                    std::process::abort();
                }
                // Recorded at once, one transaction per message: the window in which a kill
                // makes a message go twice (with the same idempotency key) is this call alone.
                let status: String = db
                    .query_one(&report, &[&d.id, &d.attempt, &outcome.code(), &outcome.detail()])
                    .map_err(sql_error)?
                    .get(0);
                if !matches!(outcome, Outcome::Sent(_)) {
                    eprintln!(
                        "pg_credit_courier: delivery {} ({} to {}): {} -> {status}",
                        d.id,
                        d.kind,
                        d.address,
                        outcome.detail()
                    );
                }
            }
        }
        if config.once && !sent_any {
            return Ok(());
        }
        if sent_any {
            continue;
        }
        // Sleep until an event is announced, or the poll interval passes (retries come due);
        // then take every announcement already here: one plan reads them all.
        let mut n = db.notifications();
        n.timeout_iter(config.poll).next().map_err(|e| format!("waiting for notifications: {e}"))?;
        let mut pending = n.iter();
        while pending.next().map_err(|e| format!("reading notifications: {e}"))?.is_some() {}
    }
}

fn sql_error(e: postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{}: {} ({})", d.severity(), d.message(), d.code().code()),
        None => e.to_string(),
    }
}
