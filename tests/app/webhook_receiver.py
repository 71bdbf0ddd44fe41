"""A real Standard Webhooks receiver on loopback, as a subscriber would run one: it verifies
every delivery with the ``standardwebhooks`` library and keeps what it could verify."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from app.settings import Settings
from tests.conftest import TEST_SECRET


@dataclass
class Receiver:
    """Answers ``status`` (200 unless told otherwise). With ``hold`` set, each request waits
    for ``release`` after signalling ``arrived``: a test can act while a delivery is in
    flight."""

    secret: str = ""
    status: int = 200
    verified: list[dict[str, Any]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    rejected: int = 0
    url: str = ""
    hold: bool = False
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


@contextmanager
def serving() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.headers.append(headers)
            if state.hold:
                state.arrived.set()
                state.release.wait(60)
            try:
                state.verified.append(Webhook(state.secret).verify(body, headers))
                state.ids.append(headers["webhook-id"])
            except WebhookVerificationError:
                state.rejected += 1
            self.send_response(state.status)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the test reads the state, not the console."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()


def loopback_settings(**extra: Any) -> Settings:
    """Test settings that let webhooks reach the receiver on loopback (refused in production)."""
    return Settings(
        environment="test",
        secret_key=TEST_SECRET,
        database_url="sqlite://",
        webhook_allow_private_targets=True,
        **extra,
    )
