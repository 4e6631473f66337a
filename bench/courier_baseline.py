#!/usr/bin/python3
"""The courier benchmark's baseline: the same messages sent straight to the same receivers by the
simplest client there is, with no database in the loop (one SMTP connection with STARTTLS and
AUTH; one keep-alive HTTP connection with the same signature headers).

  courier_baseline.py smtp FILE HOST PORT CAFILE PASSWORD   messages: JSON lines {key, address, subject, body}
  courier_baseline.py http FILE HOST PORT SECRET            messages: JSON lines {key, address, payload}
Prints messages per second.
"""
import hashlib
import hmac
import http.client
import json
import smtplib
import ssl
import sys
import time
import urllib.parse
from email.message import EmailMessage


def smtp(path, host, port, cafile, password):
    msgs = [json.loads(line) for line in open(path, encoding="utf-8")]
    start = time.perf_counter()
    context = ssl.create_default_context(cafile=cafile)
    with smtplib.SMTP(host, int(port)) as s:
        s.starttls(context=context)
        s.login("courier", password)
        for m in msgs:
            e = EmailMessage()
            e["From"] = "信用管理部 <credit@seller.example>"
            e["To"] = m["address"]
            e["Subject"] = m["subject"]
            e["Message-ID"] = "<%s@seller.example>" % m["key"]
            e["X-Credit-Idempotency-Key"] = m["key"]
            e.set_content(m["body"])
            s.send_message(e)
    return len(msgs) / (time.perf_counter() - start)


def post(path, host, port, secret):
    msgs = [json.loads(line) for line in open(path, encoding="utf-8")]
    start = time.perf_counter()
    conn = http.client.HTTPConnection(host, int(port))
    for m in msgs:
        body = json.dumps(m["payload"], ensure_ascii=False, separators=(",", ":")).encode()
        ts = str(int(time.time()))
        sig = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        target = urllib.parse.urlsplit(m["address"]).path
        conn.request("POST", target, body, {"Content-Type": "application/json; charset=utf-8",
                                            "Idempotency-Key": m["key"], "X-Credit-Timestamp": ts,
                                            "X-Credit-Signature": "v1=" + sig})
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            sys.exit("HTTP %s" % r.status)
    return len(msgs) / (time.perf_counter() - start)


if __name__ == "__main__":
    if sys.argv[1] == "smtp":
        print("%.1f" % smtp(*sys.argv[2:7]))
    else:
        print("%.1f" % post(*sys.argv[2:6]))
