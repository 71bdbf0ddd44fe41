"""Checks for the standard codes the registry stores.

- USCC (统一社会信用代码, GB 32100-2015): delegated to python-stdnum, which checks the
  character set, the embedded organisation code and the check character.
- Region codes (GB/T 2260): six digits whose first two name a real province-level division.
- Industry codes (GB/T 4754-2017): a section letter optionally followed by a 2-, 3- or 4-digit
  division/group/class whose division belongs to that section.
"""

from __future__ import annotations

import re

from stdnum.cn import uscc as _uscc
from stdnum.exceptions import ValidationError as StdnumError

PROVINCE_CODES = frozenset(
    [
        "11",
        "12",
        "13",
        "14",
        "15",
        "21",
        "22",
        "23",
        "31",
        "32",
        "33",
        "34",
        "35",
        "36",
        "37",
        "41",
        "42",
        "43",
        "44",
        "45",
        "46",
        "50",
        "51",
        "52",
        "53",
        "54",
        "61",
        "62",
        "63",
        "64",
        "65",
        "71",
        "81",
        "82",
    ]
)

# GB/T 4754-2017 sections and their division ranges (inclusive).
INDUSTRY_SECTIONS: dict[str, tuple[int, int]] = {
    "A": (1, 5),
    "B": (6, 12),
    "C": (13, 43),
    "D": (44, 46),
    "E": (47, 50),
    "F": (51, 52),
    "G": (53, 60),
    "H": (61, 62),
    "I": (63, 65),
    "J": (66, 69),
    "K": (70, 70),
    "L": (71, 72),
    "M": (73, 75),
    "N": (76, 79),
    "O": (80, 82),
    "P": (83, 83),
    "Q": (84, 85),
    "R": (86, 90),
    "S": (91, 97),
    "T": (98, 98),
}

_REGION = re.compile(r"\d{6}")
_REGION_PREFIX = re.compile(r"\d{2}(\d{2}(\d{2})?)?")
_INDUSTRY = re.compile(r"([A-T])(\d{2,4})?")


def normalise_uscc(value: str) -> str:
    """Return the canonical upper-case USCC or raise ``ValueError`` saying what is wrong."""
    try:
        return str(_uscc.validate(value.strip().upper()))
    except StdnumError as exc:
        raise ValueError(f"not a valid unified social credit code: {exc}") from exc


def uscc_check_character(first17: str) -> str:
    return str(_uscc.calc_check_digit(first17))


def check_region_code(value: str) -> str:
    if not _REGION.fullmatch(value):
        raise ValueError("region code must be 6 digits (GB/T 2260), e.g. 350582")
    if value[:2] not in PROVINCE_CODES:
        raise ValueError(f"{value[:2]} is not a province-level code of GB/T 2260")
    return value


def check_region_prefix(value: str) -> str:
    """A scope: province (2 digits), city (4) or county (6)."""
    if not _REGION_PREFIX.fullmatch(value):
        raise ValueError("region prefix must be 2, 4 or 6 digits (province, city or county)")
    if value[:2] not in PROVINCE_CODES:
        raise ValueError(f"{value[:2]} is not a province-level code of GB/T 2260")
    return value


def check_industry_code(value: str, *, prefix_ok: bool = False) -> str:
    """Validate a GB/T 4754 code; ``prefix_ok`` also admits a bare section or odd length."""
    value = value.strip().upper()
    pattern = re.compile(r"([A-T])(\d{1,4})?") if prefix_ok else _INDUSTRY
    match = pattern.fullmatch(value)
    if not match:
        raise ValueError(
            "industry code must be GB/T 4754: a section letter A–T and 2–4 digits, e.g. C17"
        )
    digits = match.group(2)
    if digits and len(digits) >= 2:
        low, high = INDUSTRY_SECTIONS[match.group(1)]
        if not low <= int(digits[:2]) <= high:
            raise ValueError(
                f"division {digits[:2]} does not belong to section {match.group(1)} "
                f"({low:02d}–{high:02d})"
            )
    return value


def region_matches(code: str, prefixes: list[str]) -> bool:
    return any(code.startswith(p) for p in prefixes)


def make_uscc(region_code: str, serial: int, *, registration: str = "91") -> str:
    """A well-formed USCC for demo and test data: registration type, region, serial, check.

    ``91`` is "enterprise, registered with market regulation"; the serial fills the
    nine-character organisation-code part with digits.
    """
    body = f"{registration}{region_code}{serial % 10**9:09d}"
    return body + uscc_check_character(body)
