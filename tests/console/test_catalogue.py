"""The message catalogue is complete: every string a page or a console module marks for
translation has a Chinese translation, and the .po compiles at load time (no build step)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from app.console import i18n
from app.models import (
    AssignmentStatus,
    FollowUpKind,
    MatchRunStatus,
    PlanStatus,
    RequestStatus,
    Role,
    Tier,
)

CONSOLE = Path(i18n.__file__).resolve().parent
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def _marked() -> set[str]:
    found = extract_from_dir(
        str(CONSOLE),
        METHODS,
        keywords={"_": None, "N_": None, "gettext": None},
        options_map=OPTIONS,
    )
    return {message if isinstance(message, str) else message[0] for _, _, message, _, _ in found}


def test_every_marked_string_has_a_chinese_translation() -> None:
    with (CONSOLE / "locale/zh/LC_MESSAGES/messages.po").open("rb") as handle:
        catalog = read_po(handle)
    translated = {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy}
    marked = _marked()
    assert len(marked) > 200
    assert sorted(marked - translated.keys()) == []


def test_the_catalogue_compiles_when_first_used() -> None:
    translate = i18n.translations("zh")
    assert translate.gettext("Log in") == "登录"
    assert i18n.translations("en").gettext("Log in") == "Log in"


def test_every_vocabulary_value_has_a_label() -> None:
    for vocabulary, enum in [
        ("role", Role),
        ("request_status", RequestStatus),
        ("assignment_status", AssignmentStatus),
        ("plan_status", PlanStatus),
        ("tier", Tier),
        ("run_status", MatchRunStatus),
        ("follow_up_kind", FollowUpKind),
    ]:
        assert set(i18n.LABELS[vocabulary]) == {e.value for e in enum}, vocabulary
