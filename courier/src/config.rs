//! Settings: each `--name value` option, or its environment variable PG_CREDIT_COURIER_NAME
//! (upper case, `-` as `_`). Secrets are best given by environment (or a systemd credential).
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain SMTP (a relay on the same machine).
    None,
    /// STARTTLS, required: the courier refuses to send in clear if the server does not offer it.
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub dsn: String,
    pub name: String,
    pub once: bool,
    pub batch: i32,
    pub plan_batch: i32,
    pub poll: Duration,
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub smtp_security: Security,
    pub smtp_user: Option<String>,
    pub smtp_password: Option<String>,
    pub smtp_from: Option<String>,
    pub smtp_ca_file: Option<String>,
    pub smtp_helo: Option<String>,
    pub sms_url: Option<String>,
    pub sms_secret: Option<String>,
    pub timeout: Duration,
}

pub const USAGE: &str = "\
pg_credit_courier: delivers pg_credit's outbox by e-mail and webhook, exactly once per event and recipient.

usage: pg_credit_courier [--once] [options]

  --dsn DSN              libpq connection string of the courier's login (PG_CREDIT_COURIER_DSN)
  --name NAME            this courier's name in the delivery log (default: host and process id)
  --once                 deliver what is due now and exit (for cron); otherwise run, woken by NOTIFY
  --batch N              deliveries claimed at a time (default 50)
  --poll SECONDS         longest sleep between looks at the outbox and retries (default 5)
  --smtp-host HOST       SMTP server (needed for e-mail)
  --smtp-port PORT       default 587 with starttls, 465 with tls, 25 with none
  --smtp-security MODE   starttls (default), tls or none
  --smtp-user USER       AUTH login (with --smtp-password or PG_CREDIT_COURIER_SMTP_PASSWORD)
  --smtp-from MAILBOX    sender, e.g. '信用管理部 <credit@example.com>'
  --smtp-ca-file FILE    PEM certificate to trust besides the system's (a private CA)
  --smtp-helo NAME       name in EHLO (default: the host name)
  --sms-url URL          SMS gateway: messages to phone numbers are POSTed there as signed JSON
  --sms-secret SECRET    its HMAC key (PG_CREDIT_COURIER_SMS_SECRET)
  --timeout SECONDS      SMTP and HTTP timeout (default 30)

Every option can also be set as PG_CREDIT_COURIER_<OPTION>, e.g. PG_CREDIT_COURIER_SMTP_HOST.
";

fn env(name: &str) -> Option<String> {
    let key = format!("PG_CREDIT_COURIER_{}", name.to_uppercase().replace('-', "_"));
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

impl Config {
    pub fn from_args(args: &[String]) -> Result<Config, String> {
        let mut given: Vec<(String, String)> = Vec::new();
        let mut once = env("once").is_some_and(|v| v == "1" || v == "true");
        let mut i = 0;
        while i < args.len() {
            let a = &args[i];
            match a.as_str() {
                "--once" => once = true,
                "--help" | "-h" => return Err(USAGE.to_string()),
                _ if a.starts_with("--") => {
                    let (k, v) = match a.split_once('=') {
                        Some((k, v)) => (k[2..].to_string(), v.to_string()),
                        None => {
                            i += 1;
                            let v = args.get(i).ok_or_else(|| format!("{a} needs a value\n\n{USAGE}"))?;
                            (a[2..].to_string(), v.clone())
                        }
                    };
                    given.push((k, v));
                }
                _ => return Err(format!("unexpected argument \"{a}\"\n\n{USAGE}")),
            }
            i += 1;
        }
        const KNOWN: [&str; 16] = [
            "dsn",
            "name",
            "batch",
            "poll",
            "smtp-host",
            "smtp-port",
            "smtp-security",
            "smtp-user",
            "smtp-password",
            "smtp-from",
            "smtp-ca-file",
            "smtp-helo",
            "sms-url",
            "sms-secret",
            "timeout",
            "plan-batch",
        ];
        if let Some((k, _)) = given.iter().find(|(k, _)| !KNOWN.contains(&k.as_str())) {
            return Err(format!("unknown option --{k}\n\n{USAGE}"));
        }
        let get = |k: &str| given.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone()).or_else(|| env(k));
        let number = |k: &str, default: u64| -> Result<u64, String> {
            match get(k) {
                None => Ok(default),
                Some(v) => v.parse::<u64>().map_err(|_| format!("--{k} is a whole number, not \"{v}\"")),
            }
        };
        let smtp_security = match get("smtp-security").as_deref() {
            None | Some("starttls") => Security::StartTls,
            Some("tls") => Security::Tls,
            Some("none") => Security::None,
            Some(other) => return Err(format!("--smtp-security is starttls, tls or none, not \"{other}\"")),
        };
        let default_port = match smtp_security {
            Security::StartTls => 587,
            Security::Tls => 465,
            Security::None => 25,
        };
        let host = std::env::var("HOSTNAME").ok().or_else(|| std::fs::read_to_string("/etc/hostname").ok());
        let name = get("name")
            .unwrap_or_else(|| format!("{}:{}", host.as_deref().unwrap_or("courier").trim(), std::process::id()));
        let batch = number("batch", 50)?;
        if !(1..=10_000).contains(&batch) {
            return Err("--batch is between 1 and 10000".into());
        }
        let port = number("smtp-port", default_port)?;
        let port = u16::try_from(port).map_err(|_| format!("--smtp-port {port} is not a port"))?;
        let poll = number("poll", 5)?.max(1);
        Ok(Config {
            dsn: get("dsn").ok_or_else(|| format!("--dsn (or PG_CREDIT_COURIER_DSN) is needed\n\n{USAGE}"))?,
            name,
            once,
            batch: batch as i32,
            plan_batch: number("plan-batch", 1000)?.clamp(1, 100_000) as i32,
            poll: Duration::from_secs(poll),
            smtp_host: get("smtp-host"),
            smtp_port: port,
            smtp_security,
            smtp_user: get("smtp-user"),
            smtp_password: get("smtp-password"),
            smtp_from: get("smtp-from"),
            smtp_ca_file: get("smtp-ca-file"),
            smtp_helo: get("smtp-helo"),
            sms_url: get("sms-url"),
            sms_secret: get("sms-secret"),
            timeout: Duration::from_secs(number("timeout", 30)?.max(1)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn options_and_defaults() {
        let c =
            Config::from_args(&args(&["--dsn", "host=x", "--once", "--smtp-security=tls", "--batch", "7"])).unwrap();
        assert!(c.once);
        assert_eq!(c.smtp_security, Security::Tls);
        assert_eq!(c.smtp_port, 465);
        assert_eq!(c.batch, 7);
        assert!(Config::from_args(&args(&["--dsn", "x", "--bogus", "1"]))
            .unwrap_err()
            .contains("unknown option --bogus"));
        assert!(Config::from_args(&args(&["--dsn", "x", "--batch", "many"])).unwrap_err().contains("whole number"));
        assert!(Config::from_args(&args(&["--dsn", "x", "--smtp-security", "ssl"]))
            .unwrap_err()
            .contains("starttls, tls or none"));
    }
}
