"""``Principal`` lives in :mod:`app.common.principal`: the request plumbing (``app.deps``,
idempotency) and every domain read it, and auth importing them back made cycles. This name
stays for the importers not yet moved (plans, requests, match runs, tests)."""

from __future__ import annotations

from app.common.principal import Principal

__all__ = ["Principal"]
