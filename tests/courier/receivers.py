#!/usr/bin/python3
"""Real receivers for the courier's tests, on loopback ports.

  receivers.py smtp PORT LOG CERT KEY   an SMTP server (aiosmtpd) that requires STARTTLS and
                                        AUTH (user courier, password from $SMTP_PASSWORD), refuses
                                        recipients starting with "nobody" (550), and writes each
                                        message it accepts to LOG as a JSON line
  receivers.py http PORT LOG            an HTTP server that checks each webhook's signature
                                        (secrets in $WEBHOOK_SECRETS: path=secret,...), keeps
                                        idempotency keys (a repeated key is logged as a duplicate
                                        and not applied), answers 410 on /gone, 503 on /down and
                                        301 on /moved

Each log line carries what the test compares with the outbox: the idempotency key, the
recipient, subject and text (decoded), the HTML body and the attachment's digest.
"""
import asyncio
import base64
import email
import email.policy
import hashlib
import hmac
import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def append(path, record, lock=threading.Lock()):
    line = json.dumps(record, ensure_ascii=False)
    with lock:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()


def smtp(port, log, cert, key):
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    password = os.environ.get("SMTP_PASSWORD", "secret")
    delay = float(os.environ.get("SMTP_DELAY", "0"))

    class Handler:
        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            if address.startswith("nobody"):
                return "550 5.1.1 <%s>: no such user here" % address
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server, session, envelope):
            if delay:
                await asyncio.sleep(delay)
            msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
            text = html = None
            attachments = []
            for part in msg.walk():
                if part.is_multipart():
                    continue
                if part.get_filename():
                    content = part.get_content()
                    data = content.encode("utf-8") if isinstance(content, str) else content
                    attachments.append({"name": part.get_filename(), "content_type": part.get_content_type(),
                                        "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})
                elif part.get_content_type() == "text/plain" and text is None:
                    text = part.get_content()
                elif part.get_content_type() == "text/html" and html is None:
                    html = part.get_content()
            append(log, {
                "received_at": time.time(), "tls": session.ssl is not None,
                "authenticated": bool(session.authenticated),
                "mail_from": envelope.mail_from, "rcpt": envelope.rcpt_tos,
                "message_id": msg["Message-ID"], "key": msg["X-Credit-Idempotency-Key"],
                "kind": msg["X-Credit-Kind"], "subject": str(msg["Subject"]),
                "text": text, "html_sha256": hashlib.sha256(html.encode("utf-8")).hexdigest() if html else None,
                "attachments": attachments,
            })
            return "250 Message accepted for delivery"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"courier" \
            and auth_data.password == password.encode()
        return AuthResult(success=ok)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True, auth_required=True, auth_require_tls=True,
                            authenticator=authenticator, server_hostname="localhost")
    controller.start()
    print("smtp listening on", port, flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


def http(port, log):
    secrets = dict(kv.split("=", 1) for kv in os.environ.get("WEBHOOK_SECRETS", "").split(",") if "=" in kv)
    seen = set()
    seen_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body are written apart: without this, each answer waits for the client's
        # delayed ACK (40 ms), and the server, not the client, would be what is measured.
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def answer(self, status, body=b"{}"):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path == "/gone":
                return self.answer(410, b'{"error":"this endpoint was removed"}')
            if self.path == "/down":
                return self.answer(503, b'{"error":"try later"}')
            if self.path == "/moved":
                self.send_response(301)
                self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            secret = secrets.get(self.path)
            ts = self.headers.get("X-Credit-Timestamp", "")
            sig = self.headers.get("X-Credit-Signature", "")
            key = self.headers.get("Idempotency-Key")
            expected = "v1=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest() if secret else None
            valid = expected is not None and hmac.compare_digest(expected, sig) and ts.isdigit() \
                and abs(time.time() - int(ts)) < 300
            if not valid:
                append(log, {"received_at": time.time(), "path": self.path, "key": key, "valid": False})
                return self.answer(401, b'{"error":"bad signature"}')
            doc = json.loads(body)
            with seen_lock:
                duplicate = key in seen
                seen.add(key)
            att = doc.get("attachment")
            append(log, {
                "received_at": time.time(), "path": self.path, "key": key, "valid": True, "duplicate": duplicate,
                "body_key": doc.get("idempotency_key"), "kind": doc.get("kind"), "customer": doc.get("customer"),
                "to": doc.get("to"), "subject": doc.get("subject"), "text": doc.get("text"),
                "outbox_id": (doc.get("event") or {}).get("id"),
                "attachment_sha256": hashlib.sha256(att["content"].encode("utf-8")).hexdigest() if att else None,
            })
            self.answer(200, b'{"duplicate":true}' if duplicate else b'{"accepted":true}')

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("http listening on", port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "smtp":
        smtp(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5])
    elif sys.argv[1] == "http":
        http(int(sys.argv[2]), sys.argv[3])
    else:
        sys.exit("usage: receivers.py smtp|http ...")
