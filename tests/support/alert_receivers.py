"""Where the alert tests' alerts arrive: a real SMTP server (aiosmtpd) and an HTTP
receiver, both on loopback, and the Airflow connections that point the pipeline at them."""

from __future__ import annotations

import email
import email.policy
import html
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from reco import config
from tests.support.servers import free_port

TO = "ops@reco.test"


@dataclass
class Inbox:
    """Alerts received: e-mails (subject, body text) and webhook JSON bodies."""

    emails: list[dict[str, str]] = field(default_factory=list)
    posts: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def about(self, run_id: str) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
        """The e-mails and posts that name ``run_id``."""
        with self.lock:
            mails = [m for m in self.emails if run_id in m["body"] or run_id in m["subject"]]
            posts = [p for p in self.posts if run_id in json.dumps(p)]
        return mails, posts

    def wait_for(self, run_id: str, kind: str, timeout: float = 60) -> tuple[dict, dict]:
        """The e-mail and the post of alert ``kind`` about ``run_id`` (both must arrive)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mails, posts = self.about(run_id)
            post = next((p for p in posts if p["kind"] == kind), None)
            mail = next((m for m in mails if post and post["title"] in m["subject"]), None)
            if post and mail:
                return mail, post
            time.sleep(0.2)
        raise AssertionError(f"no {kind} alert about {run_id}: {self.about(run_id)}")


class _SmtpHandler:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        part = message.get_body(preferencelist=("html", "plain"))
        # The text as a reader sees it (the HTML's entities resolved).
        body = html.unescape(part.get_content()) if part is not None else ""
        with self.inbox.lock:
            self.inbox.emails.append(
                {
                    "from": envelope.mail_from,
                    "to": ",".join(envelope.rcpt_tos),
                    "subject": str(message["subject"]),
                    "body": body,
                }
            )
        return "250 OK"


@contextmanager
def alert_receivers() -> Iterator[tuple[Inbox, dict[str, str]]]:
    """Both receivers, and the environment that defines the two alert connections."""
    from aiosmtpd.controller import Controller

    inbox = Inbox()
    smtp_port = free_port()
    controller = Controller(_SmtpHandler(inbox), hostname="127.0.0.1", port=smtp_port)

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with inbox.lock:
                inbox.posts.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    env = {
        f"AIRFLOW_CONN_{config.ALERT_EMAIL_CONN_ID.upper()}": json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": smtp_port,
                "extra": {
                    "to": TO,
                    "from_email": "reco@reco.test",
                    "disable_ssl": True,
                    "disable_tls": True,
                },
            }
        ),
        f"AIRFLOW_CONN_{config.ALERT_WEBHOOK_CONN_ID.upper()}": json.dumps(
            {
                "conn_type": "http",
                "host": "127.0.0.1",
                "port": http.server_address[1],
                "schema": "http",
                "extra": {"endpoint": "/alerts"},
            }
        ),
    }
    controller.start()
    try:
        yield inbox, env
    finally:
        controller.stop()
        http.shutdown()
