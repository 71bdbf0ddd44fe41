"""Language of the console: a gettext catalogue (Babel), Chinese by default, English on request.

Message ids are the English text; ``locale/zh/LC_MESSAGES/messages.po`` holds the Chinese.
The ``.po`` file is compiled to a ``.mo`` in memory the first time it is needed (Babel's own
reader and writer), so ``pip install -e .`` needs no compile step and no build hook.
"""

from __future__ import annotations

import gettext
from functools import lru_cache
from io import BytesIO
from pathlib import Path

from babel.core import Locale, UnknownLocaleError, negotiate_locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from fastapi import Request

LOCALES = ("zh", "en")
DEFAULT_LOCALE = "zh"
LANG_COOKIE = "zhuqi_lang"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "mark, translate later"
    return message


@lru_cache
def translations(locale: str) -> gettext.NullTranslations:
    """The compiled catalogue of ``locale``; English is the message ids themselves."""
    po = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return gettext.NullTranslations()
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    compiled = BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def _accepted(header: str) -> list[str]:
    """Accept-Language tags, best first (``zh-CN,zh;q=0.9,en;q=0.8`` → zh_CN, zh, en)."""
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        if not tag or tag == "*":
            continue
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        weighted.append((-quality, index, tag.replace("-", "_")))
    return [tag for _, _, tag in sorted(weighted)]


def pick_locale(request: Request) -> str:
    """The switch the user made (a cookie) wins; then the browser's Accept-Language; then zh."""
    chosen = request.cookies.get(LANG_COOKIE, "")
    if chosen in LOCALES:
        return chosen
    for tag in _accepted(request.headers.get("accept-language", "")):
        try:
            language = Locale.parse(tag).language
        except (ValueError, UnknownLocaleError):
            continue
        found = negotiate_locale([language], list(LOCALES))
        if found:
            return found
    return DEFAULT_LOCALE


# Closed vocabularies shown to people. Marked with N_ so extraction finds them; translated at
# render time. Keys are the stored values; an unknown value is shown as "—", never raw.
LABELS: dict[str, dict[str, str]] = {
    "role": {
        "enterprise": N_("Enterprise"),
        "expert": N_("Expert"),
        "platform": N_("Service platform"),
        "coordinator": N_("Coordinator"),
        "admin": N_("Administrator"),
    },
    "request_status": {
        "submitted": N_("Submitted"),
        "triaged": N_("Triaged"),
        "matched": N_("Matched"),
        "in_progress": N_("In progress"),
        "resolved": N_("Resolved"),
        "withdrawn": N_("Withdrawn"),
        "unresolvable": N_("Unresolvable"),
    },
    "assignment_status": {
        "proposed": N_("Proposed"),
        "offered": N_("Offered"),
        "accepted": N_("Accepted"),
        "active": N_("Active"),
        "completed": N_("Completed"),
        "declined": N_("Declined"),
        "expired": N_("Expired"),
        "withdrawn": N_("Withdrawn"),
        "cancelled": N_("Cancelled"),
    },
    "plan_status": {
        "draft": N_("Draft"),
        "active": N_("Active"),
        "follow_up": N_("Follow-up"),
        "closed": N_("Closed"),
    },
    "run_status": {
        "queued": N_("Queued"),
        "running": N_("Running"),
        "succeeded": N_("Finished"),
        "failed": N_("Failed"),
        "published": N_("Published"),
        "reverted": N_("Reverted"),
    },
    "follow_up_kind": {
        "visit": N_("Visit"),
        "call": N_("Phone call"),
        "online": N_("Online"),
        "note": N_("Note"),
    },
    "size": {"micro": N_("Micro"), "small": N_("Small"), "medium": N_("Medium")},
    "tier": {
        "none": N_("None"),
        "innovative": N_("Innovative SME"),
        "specialised": N_("Specialised and new SME"),
        "little_giant": N_("Little giant"),
        "champion": N_("Single champion"),
    },
    "severity": {"ordinary": N_("Ordinary"), "major": N_("Major")},
    "kind": {"expert": N_("Expert"), "platform": N_("Service platform")},
    "decline_reason": {
        "no_capacity": N_("No capacity"),
        "outside_expertise": N_("Outside my expertise"),
        "conflict_of_interest": N_("Conflict of interest"),
        "too_far": N_("Too far away"),
        "unavailable": N_("Unavailable"),
        "other": N_("Other"),
    },
    "diff_kind": {
        "new": N_("New"),
        "same": N_("Unchanged"),
        "changed": N_("Changed"),
        "dropped": N_("Dropped"),
        "unmatched": N_("Unmatched"),
    },
    "overdue_kind": {
        "offer": N_("Offer unanswered"),
        "first_follow_up": N_("First follow-up late"),
        "unrouted": N_("Not routed in time"),
        "unresolved": N_("Not resolved in time"),
    },
    "stage": {
        "claim": N_("claiming"),
        "snapshot": N_("reading requests and providers"),
        "supply": N_("checking supply against demand"),
        "match": N_("solving the assignment"),
        "write": N_("writing proposals"),
        "done": N_("done"),
        "queued": N_("Queued"),
        "failed": N_("Failed"),
    },
    "vetting": {
        "pending": N_("Awaiting vetting"),
        "approved": N_("Approved"),
        "rejected": N_("Rejected"),
    },
    "notification_status": {
        "pending": N_("Waiting to be sent"),
        "sent": N_("Sent"),
        "failed": N_("Sending failed"),
    },
    "urgency": {
        "1": N_("1 · can wait"),
        "2": N_("2 · low"),
        "3": N_("3 · normal"),
        "4": N_("4 · high"),
        "5": N_("5 · business at stake"),
    },
}


def label(translate: gettext.NullTranslations, vocabulary: str, value: object) -> str:
    raw = getattr(value, "value", value)
    message = LABELS.get(vocabulary, {}).get(str(raw))
    return translate.gettext(message) if message else "—"
