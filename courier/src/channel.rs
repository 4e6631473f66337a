//! The channels: e-mail over SMTP, and signed JSON over HTTP (webhooks and the SMS gateway).
//! Each send ends in an Outcome the database records: sent, temporary (retried with backoff) or
//! permanent (a dead letter at once).
use crate::config::{Config, Security};
use hmac::{Hmac, Mac};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use sha2::Sha256;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent(String),
    Temporary(String),
    Permanent(String),
}

impl Outcome {
    pub fn code(&self) -> &'static str {
        match self {
            Outcome::Sent(_) => "sent",
            Outcome::Temporary(_) => "temporary",
            Outcome::Permanent(_) => "permanent",
        }
    }
    pub fn detail(&self) -> &str {
        match self {
            Outcome::Sent(d) | Outcome::Temporary(d) | Outcome::Permanent(d) => d,
        }
    }
}

/// One claimed delivery, as credit.courier_claim returns it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: i64,
    pub attempt: i32,
    pub channel: String,
    pub address: String,
    pub key: String,
    pub kind: String,
    pub customer: Option<String>,
    pub language: String,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub body_html: Option<String>,
    pub attachment_name: Option<String>,
    pub attachment: Option<String>,
    pub payload: Option<serde_json::Value>,
    pub secret: Option<String>,
}

pub struct Channels {
    smtp: Result<SmtpTransport, String>,
    from: Option<Mailbox>,
    http: ureq::Agent,
    sms_url: Option<String>,
    sms_secret: Option<String>,
}

impl Channels {
    pub fn new(c: &Config) -> Result<Channels, String> {
        let from = match &c.smtp_from {
            Some(f) => Some(f.parse::<Mailbox>().map_err(|e| format!("--smtp-from \"{f}\" is not a mailbox: {e}"))?),
            None => None,
        };
        let smtp = match &c.smtp_host {
            None => Err("no SMTP server configured (--smtp-host)".to_string()),
            Some(host) => Ok(smtp_transport(c, host)?),
        };
        if smtp.is_ok() && from.is_none() {
            return Err("--smtp-from is needed with --smtp-host".into());
        }
        let http = ureq::Agent::config_builder()
            .timeout_global(Some(c.timeout))
            .http_status_as_error(false)
            // A redirect is an answer (a dead letter naming it), not a new place to send the
            // customer's data and signature to.
            .max_redirects(0)
            .user_agent(concat!("pg_credit_courier/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        Ok(Channels { smtp, from, http, sms_url: c.sms_url.clone(), sms_secret: c.sms_secret.clone() })
    }

    pub fn send(&self, d: &Delivery) -> Outcome {
        match d.channel.as_str() {
            "email" => self.email(d),
            "webhook" => match (&d.payload, &d.secret) {
                (Some(p), Some(s)) => self.post(&d.address, s, &d.key, p),
                (None, _) => Outcome::Permanent("the delivery has no webhook payload".into()),
                (_, None) => Outcome::Permanent("the webhook has no secret (credit.set_contact)".into()),
            },
            "sms" => match (&self.sms_url, &self.sms_secret) {
                (Some(url), Some(secret)) => {
                    let body = serde_json::json!({
                        "idempotency_key": d.key, "to": d.address, "text": d.body, "kind": d.kind,
                        "customer": d.customer, "language": d.language,
                    });
                    self.post(url, secret, &d.key, &body)
                }
                _ => Outcome::Temporary("no SMS gateway configured (--sms-url and --sms-secret)".into()),
            },
            other => Outcome::Permanent(format!("unknown channel \"{other}\"")),
        }
    }

    fn email(&self, d: &Delivery) -> Outcome {
        let smtp = match &self.smtp {
            Ok(t) => t,
            Err(e) => return Outcome::Temporary(e.clone()),
        };
        let Some(from) = self.from.clone() else { return Outcome::Temporary("no --smtp-from".into()) };
        let to: Mailbox = match d.address.parse() {
            Ok(m) => m,
            Err(e) => return Outcome::Permanent(format!("invalid address \"{}\": {e}", d.address)),
        };
        let domain = from.email.domain().to_string();
        let mut b = Message::builder()
            .from(from)
            .to(to)
            .subject(d.subject.clone().unwrap_or_default())
            .message_id(Some(format!("<{}@{}>", d.key, domain)));
        b = b.raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("X-Credit-Idempotency-Key"), d.key.clone()));
        b = b.raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("X-Credit-Kind"), d.kind.clone()));
        let text = d.body.clone().unwrap_or_default();
        let built = match (&d.body_html, &d.attachment) {
            (Some(html), att) => {
                let mut mixed = MultiPart::mixed().multipart(MultiPart::alternative_plain_html(text, html.clone()));
                if let Some(att) = att {
                    let name = d.attachment_name.clone().unwrap_or_else(|| "attachment.html".into());
                    mixed = mixed.singlepart(Attachment::new(name).body(
                        att.clone(),
                        ContentType::parse("text/html; charset=utf-8").expect("a valid content type"),
                    ));
                }
                b.multipart(mixed)
            }
            (None, _) => b.singlepart(SinglePart::plain(text)),
        };
        let message = match built {
            Ok(m) => m,
            Err(e) => return Outcome::Permanent(format!("the message cannot be built: {e}")),
        };
        let sent = smtp.send(&message);
        no_delay_on_sockets();
        match sent {
            Ok(r) => Outcome::Sent(format!("{} {}", r.code(), r.message().collect::<Vec<_>>().join(" "))),
            Err(e) if e.is_permanent() => Outcome::Permanent(format!("SMTP: {e}")),
            Err(e) => Outcome::Temporary(format!("SMTP: {e}")),
        }
    }

    /// POSTs JSON with Idempotency-Key, X-Credit-Timestamp and X-Credit-Signature:
    /// v1=hex(HMAC-SHA256(secret, timestamp + "." + body)).
    fn post(&self, url: &str, secret: &str, key: &str, body: &serde_json::Value) -> Outcome {
        let bytes = body.to_string();
        let ts = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0).to_string();
        let signature = sign(secret, &ts, &bytes);
        let response = self
            .http
            .post(url)
            .header("Content-Type", "application/json; charset=utf-8")
            .header("Idempotency-Key", key)
            .header("X-Credit-Timestamp", &ts)
            .header("X-Credit-Signature", &format!("v1={signature}"))
            .send(&bytes);
        match response {
            Ok(mut r) => {
                let status = r.status().as_u16();
                let text: String = r.body_mut().read_to_string().unwrap_or_default().chars().take(300).collect();
                match status {
                    200..=299 => Outcome::Sent(format!("HTTP {status}")),
                    408 | 425 | 429 | 500..=599 => Outcome::Temporary(format!("HTTP {status}: {text}")),
                    _ => Outcome::Permanent(format!("HTTP {status}: {text}")),
                }
            }
            Err(ureq::Error::BadUri(e)) => Outcome::Permanent(format!("invalid endpoint \"{url}\": {e}")),
            Err(e) => Outcome::Temporary(format!("HTTP: {e}")),
        }
    }
}

/// lettre (0.11) writes the DATA terminator apart from the message and leaves Nagle's algorithm
/// on, so every message waits for the server's delayed ACK (40 ms on Linux): 23 messages a second
/// where the same server takes 690 (bench/courier.sh). It does not expose its socket, so after
/// each send the courier turns TCP_NODELAY on for every socket it holds (the pooled SMTP
/// connection among them; its PostgreSQL and HTTP sockets have it already). Remove when lettre
/// sets it itself.
fn no_delay_on_sockets() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else { return };
    for entry in dir.flatten() {
        let is_socket = std::fs::read_link(entry.path()).is_ok_and(|t| t.to_string_lossy().starts_with("socket:"));
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse::<libc::c_int>().ok()) else { continue };
        if is_socket {
            let on: libc::c_int = 1;
            // SAFETY: fd is one of this process's open sockets (listed by /proc/self/fd just now);
            // setsockopt reads `on` for its size and changes nothing else. On a socket that is not
            // TCP it fails with EOPNOTSUPP, which is ignored.
            unsafe {
                libc::setsockopt(
                    fd,
                    libc::IPPROTO_TCP,
                    libc::TCP_NODELAY,
                    (&on as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                );
            }
        }
    }
}

pub fn sign(secret: &str, timestamp: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn smtp_transport(c: &Config, host: &str) -> Result<SmtpTransport, String> {
    let mut tls = TlsParameters::builder(host.to_string());
    if let Some(file) = &c.smtp_ca_file {
        let pem = std::fs::read(file).map_err(|e| format!("--smtp-ca-file {file}: {e}"))?;
        let cert = Certificate::from_pem(&pem).map_err(|e| format!("--smtp-ca-file {file}: {e}"))?;
        tls = tls.add_root_certificate(cert);
    }
    let tls = tls.build_rustls().map_err(|e| format!("TLS settings: {e}"))?;
    let mut b =
        SmtpTransport::builder_dangerous(host).port(c.smtp_port).timeout(Some(c.timeout)).tls(match c.smtp_security {
            Security::None => Tls::None,
            Security::StartTls => Tls::Required(tls),
            Security::Tls => Tls::Wrapper(tls),
        });
    if let Some(helo) = &c.smtp_helo {
        b = b.hello_name(lettre::transport::smtp::extension::ClientId::Domain(helo.clone()));
    }
    if let Some(user) = &c.smtp_user {
        let password =
            c.smtp_password.clone().ok_or("--smtp-user needs --smtp-password (or PG_CREDIT_COURIER_SMTP_PASSWORD)")?;
        b = b.credentials(Credentials::new(user.clone(), password));
    }
    Ok(b.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231-style check by recomputation with a known vector.
        assert_eq!(sign("key", "1700000000", "{}"), {
            let mut m = Hmac::<Sha256>::new_from_slice(b"key").unwrap();
            m.update(b"1700000000.{}");
            hex::encode(m.finalize().into_bytes())
        });
        assert_eq!(sign("key", "1", "a").len(), 64);
        assert_ne!(sign("key", "1", "a"), sign("key", "2", "a"));
    }
}
