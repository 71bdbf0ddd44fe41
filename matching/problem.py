"""The matching problem: frozen tables of arrays keyed by opaque ids.

Two ways in, one representation:

* the array form — :class:`RequestTable` and :class:`ProviderTable`, one array (or tuple,
  for ragged columns) per field, which is what a bulk loader produces; and
* the row form — :meth:`Problem.build` over plain :class:`RequestIn` / :class:`ProviderIn`
  dataclasses, which is what an encoder over ORM rows produces naturally.

Ids are opaque ``str`` or ``int`` values chosen by the caller; the engine only compares,
hashes and sorts them (it sorts internally so that input order never changes a result).
Nothing here validates: :func:`matching.validate.validate` does that once, at the boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from operator import itemgetter
from typing import Any, TypeAlias, TypeVar

import numpy as np
from numpy.typing import NDArray

from matching.scoring.lexicon import Lexicon

_T = TypeVar("_T")

__all__ = [
    "CATEGORIES",
    "Exclusion",
    "Id",
    "Kind",
    "Problem",
    "ProviderIn",
    "ProviderTable",
    "RequestIn",
    "RequestTable",
    "Tier",
]

#: An opaque identifier (database key, UUID string, ...).
Id: TypeAlias = str | int

#: The built-in help taxonomy (DOMAIN.md). Any other string is accepted as a category too,
#: because admins can extend the taxonomy without a code change.
CATEGORIES: tuple[str, ...] = (
    "financing",
    "cost_reduction",
    "orders_market",
    "receivables",
    "technology_rd",
    "digital_transformation",
    "talent_employment",
    "management",
    "legal_ip",
    "policy",
    "supply_chain",
    "quality_brand",
    "export",
)


class Kind(StrEnum):
    """Kind of provider: an individual expert or a service platform (larger capacity)."""

    EXPERT = "expert"
    PLATFORM = "platform"


class Tier(StrEnum):
    """Cultivation tier of an enterprise, in increasing order of policy priority."""

    NONE = "none"
    INNOVATIVE = "innovative"
    SPECIALISED = "specialised"
    LITTLE_GIANT = "little_giant"
    CHAMPION = "champion"

    @property
    def rank(self) -> int:
        """0 for ``none`` up to 4 for ``champion``."""
        return list(Tier).index(self)


@dataclass(frozen=True, slots=True)
class RequestIn:
    """One open help request, as a row.

    ``industry`` is a GB/T 4754 code (``"C17"``, ``"C1711"``), ``region`` a 6-digit
    GB/T 2260 county code (``"350582"``), ``urgency`` 1 (low) … 5 (critical). ``wanted``
    is how many distinct providers the request asks for (a team, e.g. a lawyer and a
    financing expert for one restructuring); 1 for an ordinary request.
    """

    id: Id
    category: str
    text: str
    industry: str
    region: str
    enterprise: Id
    urgency: int = 3
    tier: Tier | str = Tier.NONE
    extra_categories: Sequence[str] = ()
    wanted: int = 1


@dataclass(frozen=True, slots=True)
class ProviderIn:
    """One provider, as a row.

    ``skills`` maps category → level 1–3. ``industries`` and ``regions`` are code prefixes
    served (``regions`` empty = anywhere; ``industries`` empty = any industry, scored as a
    generalist). ``load`` counts open assignments of requests *outside* the problem (pinned
    and fixed pairs of this problem consume capacity on top of it). ``rating`` is 0–5 or
    ``None`` for "not rated yet". ``conflicts`` are enterprise ids it must never serve.
    """

    id: Id
    kind: Kind | str = Kind.EXPERT
    skills: Mapping[str, int] = field(default_factory=dict)
    expertise: str = ""
    industries: Sequence[str] = ()
    regions: Sequence[str] = ()
    remote: bool = False
    capacity: int = 1
    load: int = 0
    paused: bool = False
    active: bool = True
    rating: float | None = None
    conflicts: Iterable[Id] = ()


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A forbidden pair: ``provider`` × (one ``request`` or every request of ``enterprise``).

    Exactly one of ``request`` and ``enterprise`` is set. Exclusions naming ids that are not
    in the problem are ignored: they may belong to requests outside the run's scope.
    """

    provider: Id
    request: Id | None = None
    enterprise: Id | None = None


def _objects(values: Iterable[object]) -> NDArray[np.object_]:
    """1-d object array without numpy's habit of turning tuples into extra dimensions."""
    items = list(values)
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _pick(column: tuple[_T, ...], positions: list[int]) -> tuple[_T, ...]:
    """``column``'s items at ``positions``, in that order: a re-match cuts a table for each
    of its parts, and a generator over numpy integers cost 3x this for each ragged column."""
    if len(positions) == 1:  # itemgetter of one position returns the item, not a tuple
        return (column[positions[0]],)
    return itemgetter(*positions)(column) if positions else ()


def _column(values: list[Any], empty: type[np.generic]) -> NDArray[Any]:
    """Values as an array of their own dtype (so validation sees a float capacity as
    such, instead of a silent cast); ``empty``'s dtype when there are none."""
    return np.asarray(values) if values else np.zeros(0, dtype=empty)


def _coerce(table: object, name: str, convert: Callable[[Any], NDArray[Any]]) -> None:
    """Turn an array-like column into an array (scipy style: accept lists, tuples)."""
    value = getattr(table, name)
    if not isinstance(value, np.ndarray):
        object.__setattr__(table, name, convert(value))


@dataclass(frozen=True, slots=True)
class RequestTable:
    """Requests in array form; every field has shape ``(n_requests,)``.

    Any array-like (list, tuple) is accepted and turned into an array on construction.

    ``id``, ``enterprise``: object arrays of ids; ``category``, ``text``, ``industry``,
    ``region``, ``tier``: object arrays of ``str``; ``urgency``: integers 1–5;
    ``extra``: a tuple with one tuple of secondary category keys per request (left out:
    none for every request); ``wanted``: providers wanted per request, integers >= 1 (left
    out or empty: 1 each).
    """

    id: NDArray[np.object_]
    category: NDArray[np.object_]
    text: NDArray[np.object_]
    industry: NDArray[np.object_]
    region: NDArray[np.object_]
    urgency: NDArray[np.int64]
    tier: NDArray[np.object_]
    enterprise: NDArray[np.object_]
    extra: tuple[tuple[str, ...], ...] = ()
    wanted: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __post_init__(self) -> None:
        for name in ("id", "category", "text", "industry", "region", "tier", "enterprise"):
            _coerce(self, name, _objects)
        _coerce(self, "urgency", np.asarray)
        extra = tuple(map(tuple, self.extra))
        object.__setattr__(self, "extra", extra or ((),) * len(self.id))
        _coerce(self, "wanted", np.asarray)
        if len(self.wanted) == 0 and len(self.id):
            object.__setattr__(self, "wanted", np.ones(len(self.id), dtype=np.int64))

    def __len__(self) -> int:
        return len(self.id)

    @classmethod
    def from_rows(cls, rows: Iterable[RequestIn]) -> RequestTable:
        """Columns of the given rows, in the given order."""
        items = list(rows)
        return cls(
            id=_objects(r.id for r in items),
            category=_objects(r.category for r in items),
            text=_objects(r.text for r in items),
            industry=_objects(r.industry for r in items),
            region=_objects(r.region for r in items),
            urgency=_column([r.urgency for r in items], np.int64),
            tier=_objects(str(r.tier) for r in items),
            enterprise=_objects(r.enterprise for r in items),
            extra=tuple(tuple(r.extra_categories) for r in items),
            wanted=_column([r.wanted for r in items], np.int64),
        )

    def take(self, index: NDArray[np.intp]) -> RequestTable:
        """Rows ``index`` (shape ``(m,)``) as a new table."""
        values: dict[str, Any] = {
            name: getattr(self, name)[index]
            for name in self.__dataclass_fields__
            if name != "extra"
        }
        return RequestTable(**values, extra=_pick(self.extra, index.tolist()))


@dataclass(frozen=True, slots=True)
class ProviderTable:
    """Providers in array form; every field has shape ``(n_providers,)``.

    Ragged fields are tuples with one entry per provider: ``skills`` (category → level),
    ``industries`` and ``regions`` (tuples of prefixes), ``conflicts`` (frozensets of
    enterprise ids). ``rating`` is float with NaN (or None) for "not rated". Array-likes
    are accepted and converted on construction.
    """

    id: NDArray[np.object_]
    kind: NDArray[np.object_]
    skills: tuple[Mapping[str, int], ...]
    expertise: NDArray[np.object_]
    industries: tuple[tuple[str, ...], ...]
    regions: tuple[tuple[str, ...], ...]
    remote: NDArray[np.bool_]
    capacity: NDArray[np.int64]
    load: NDArray[np.int64]
    paused: NDArray[np.bool_]
    active: NDArray[np.bool_]
    rating: NDArray[np.float64]
    conflicts: tuple[frozenset[Id], ...]

    def __post_init__(self) -> None:
        for name in ("id", "kind", "expertise"):
            _coerce(self, name, _objects)
        for name in ("remote", "capacity", "load", "paused", "active"):
            _coerce(self, name, np.asarray)
        try:
            object.__setattr__(self, "rating", np.array(self.rating, dtype=np.float64))
        except (TypeError, ValueError):  # left for validate() to name the field
            _coerce(self, "rating", _objects)
        object.__setattr__(self, "skills", tuple(self.skills))
        object.__setattr__(self, "industries", tuple(map(tuple, self.industries)))
        object.__setattr__(self, "regions", tuple(map(tuple, self.regions)))
        object.__setattr__(self, "conflicts", tuple(map(frozenset, self.conflicts)))

    def __len__(self) -> int:
        return len(self.id)

    @classmethod
    def from_rows(cls, rows: Iterable[ProviderIn]) -> ProviderTable:
        """Columns of the given rows, in the given order."""
        items = list(rows)
        return cls.from_columns(
            id=[p.id for p in items],
            kind=[p.kind for p in items],
            skills=[dict(p.skills) for p in items],
            expertise=[p.expertise for p in items],
            industries=[p.industries for p in items],
            regions=[p.regions for p in items],
            remote=[p.remote for p in items],
            capacity=[p.capacity for p in items],
            load=[p.load for p in items],
            paused=[p.paused for p in items],
            active=[p.active for p in items],
            rating=[p.rating for p in items],
            conflicts=[p.conflicts for p in items],
        )

    @classmethod
    def from_columns(
        cls,
        *,
        id: Sequence[Id],
        kind: Sequence[Kind | str],
        skills: Sequence[Mapping[str, int]],
        expertise: Sequence[str],
        industries: Sequence[Sequence[str]],
        regions: Sequence[Sequence[str]],
        remote: Sequence[bool],
        capacity: Sequence[int],
        load: Sequence[int],
        paused: Sequence[bool],
        active: Sequence[bool],
        rating: Sequence[float | None],
        conflicts: Sequence[Iterable[Id]],
    ) -> ProviderTable:
        """A table of plain columns, one entry per provider (the fields of
        :class:`ProviderIn`, same meaning and defaults' types): a database read builds these
        straight from its rows, without a row object per provider, which cost a re-match's
        snapshot of thousands of providers as much as reading them."""
        return cls(
            id=_objects(id),
            kind=_objects(map(str, kind)),
            skills=tuple(skills),
            expertise=_objects(expertise),
            industries=tuple(map(tuple, industries)),
            regions=tuple(map(tuple, regions)),
            remote=_column(list(remote), np.bool_),
            capacity=_column(list(capacity), np.int64),
            load=_column(list(load), np.int64),
            paused=_column(list(paused), np.bool_),
            active=_column(list(active), np.bool_),
            rating=np.array(list(rating), dtype=object),  # typed in __post_init__
            conflicts=tuple(map(frozenset, conflicts)),
        )

    def take(self, index: NDArray[np.intp]) -> ProviderTable:
        """Rows ``index`` (shape ``(m,)``) as a new table."""
        values: dict[str, Any] = {}  # one entry per field, each of its own column type
        positions = index.tolist()
        for name in self.__dataclass_fields__:
            column = getattr(self, name)
            values[name] = _pick(column, positions) if isinstance(column, tuple) else column[index]
        return ProviderTable(**values)


@dataclass(frozen=True, slots=True)
class Problem:
    """Everything one match run needs: requests, providers, exclusions and pins.

    ``pinned`` pairs ``(request id, provider id)`` are kept as they are (a coordinator's
    decision, or an accepted assignment during a re-match) and consume the provider's
    capacity; the solver only decides the other requests. ``lexicon`` carries the category
    labels and the glossary (data the service's admins maintain).
    """

    requests: RequestTable
    providers: ProviderTable
    exclusions: tuple[Exclusion, ...] = ()
    pinned: tuple[tuple[Id, Id], ...] = ()
    lexicon: Lexicon = field(default_factory=Lexicon)

    @classmethod
    def build(
        cls,
        *,
        requests: Iterable[RequestIn],
        providers: Iterable[ProviderIn],
        exclusions: Iterable[Exclusion] = (),
        pinned: Iterable[tuple[Id, Id]] = (),
        lexicon: Lexicon | None = None,
    ) -> Problem:
        """Assemble a problem from plain rows (the form an ORM encoder produces)."""
        return cls(
            requests=RequestTable.from_rows(requests),
            providers=ProviderTable.from_rows(providers),
            exclusions=tuple(exclusions),
            pinned=tuple((r, p) for r, p in pinned),
            lexicon=lexicon or Lexicon(),
        )

    def replace(
        self,
        *,
        exclusions: Iterable[Exclusion] | None = None,
        pinned: Iterable[tuple[Id, Id]] | None = None,
    ) -> Problem:
        """A copy with other exclusions and/or pins (tables are shared, not copied)."""
        return Problem(
            requests=self.requests,
            providers=self.providers,
            exclusions=self.exclusions if exclusions is None else tuple(exclusions),
            pinned=self.pinned if pinned is None else tuple((r, p) for r, p in pinned),
            lexicon=self.lexicon,
        )
