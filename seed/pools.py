"""Cheap random building blocks shared by the generators.

Faker costs tens of microseconds per call, far too slow for tens of thousands of rows, so it is
asked once for pools of surnames and given names which are then sampled with the generator's own
``random.Random``. Everything here is a pure function of its inputs, so the same seed always
yields the same data.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Generic, TypeVar

from faker import Faker

T = TypeVar("T")

POOL_SIZE = 2000
# Mobile number blocks of the three carriers; the rest of the number is random.
MOBILE_PREFIXES = tuple(
    str(n) for n in (*range(134, 140), 150, 151, 152, 157, 158, 159, *range(180, 190))
)


@dataclass(frozen=True, slots=True)
class Weighted(Generic[T]):
    """A population with precomputed cumulative weights, so each draw is one bisect."""

    items: tuple[T, ...]
    cum_weights: tuple[float, ...]

    @classmethod
    def of(cls, items: Sequence[T], weights: Sequence[float]) -> Weighted[T]:
        return cls(tuple(items), tuple(accumulate(weights)))

    def pick(self, rng: random.Random) -> T:
        return rng.choices(self.items, cum_weights=self.cum_weights)[0]


@dataclass(frozen=True, slots=True)
class Pools:
    """Name material drawn from Faker ``zh_CN`` once, with its natural frequencies kept.

    Duplicates are kept on purpose: 王, 李 and 张 are common surnames and stay common.
    """

    surnames: tuple[str, ...]
    given_names: tuple[str, ...]

    @classmethod
    def build(cls, seed: int, size: int = POOL_SIZE) -> Pools:
        fake = Faker("zh_CN")
        fake.seed_instance(seed)
        surnames = tuple(fake.last_name() for _ in range(size))
        given_names = tuple(fake.first_name() for _ in range(size))
        return cls(surnames=surnames, given_names=given_names)

    def person(self, rng: random.Random) -> str:
        return rng.choice(self.surnames) + rng.choice(self.given_names)


def mobile(rng: random.Random) -> str:
    """An 11-digit mainland mobile number (random, so never connect a real SMS sender)."""
    return rng.choice(MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"


def brand(rng: random.Random, chars: str) -> str:
    """A two-character trade name (字号) such as 鸿达 or 恒盛."""
    first, second = rng.sample(chars, 2)
    return first + second


def binomial(rng: random.Random, mean: float) -> int:
    """A small count with the given mean: Binomial(n, mean / n) with n = ceil(2 * mean).

    For a mean of 1.5 that is 0, 1, 2 or 3 requests with 1 and 2 the most common.
    """
    if mean <= 0:
        return 0
    trials = max(1, int(-(-2 * mean // 1)))
    p = min(1.0, mean / trials)
    return sum(rng.random() < p for _ in range(trials))
