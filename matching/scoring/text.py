"""Text similarity of a request and a provider's expertise, for Chinese and English alike.

The analyzer is script-aware (NOTES.md, "Text features"): after NFKC folding (full-width
letters and digits become ASCII) and lower-casing, runs of CJK ideographs become their
segmented words (rjieba) plus character bigrams, while Latin runs become word tokens
(stop words dropped, a light plural fold). Glossary concept tokens are added on both sides
so that the two languages, and a colloquial word and a provider's jargon, meet
(:mod:`matching.scoring.glossary`; the problem's own glossary when it brings one).
``bench/text_quality.py`` measures the choice against the former character-unigram
analyzer and plain TF-IDF.

The TF-IDF model is fitted on the providers' expertise texts only: their vocabulary is all
that can ever match, and an IDF that does not depend on the requests keeps scores stable
when requests arrive or leave, which is what makes an incremental re-match agree with a
full one.
"""

from __future__ import annotations

import re
import sys
import threading
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import rjieba
import scipy.sparse as sp
from numpy.typing import NDArray
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer
from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

from matching.scoring.glossary import Glossary, default_glossary

__all__ = [
    "TextCache",
    "TextModel",
    "TokenMemoStats",
    "analyze",
    "clear_token_memo",
    "fit_text_model",
    "normalise",
    "segment",
    "shared_terms",
    "token_memo_stats",
    "vectorise",
    "warm_token_memo",
    "words",
]

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_RUNS = re.compile(rf"[{_CJK}]+|[a-z][a-z0-9+#]*")
_STOP = frozenset(ENGLISH_STOP_WORDS) | {"need", "help", "want", "company", "our", "we"}


def normalise(text: str) -> str:
    """NFKC-fold, lower-case and collapse whitespace (the analyzer's first step)."""
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return " ".join(text.lower().split())


def _fold(word: str) -> str:
    """Light plural fold so that "databases" meets "database" (no stemmer dependency)."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def analyze(text: str, glossary: Glossary | None = None) -> list[str]:
    """Tokens of ``text``: Chinese words and bigrams, Latin words, glossary concepts.

    A CJK run gives its segmented words of two or more characters (rjieba) *and* its
    character bigrams. Words carry meaning the bigrams miss (原材料, 数字化) and, where a
    word is itself a bigram, count twice, so real words outweigh the cross-word bigrams
    (单却 in 订单却少); the bigrams keep recall when the segmenter cuts the two sides of a
    pair differently (资金回笼 / 回笼资金). Single characters are left out: they matched
    almost everything with everything (similarities of unrelated texts around 0.1). A
    run of one character is kept as it is.

    Examples
    --------
    >>> analyze("数据库 databases", Glossary.from_data({"concepts": []}))
    ['数据库', '数据', '据库', 'database']
    """
    norm = normalise(text)
    tokens: list[str] = []
    for run in _RUNS.findall(norm):
        if run[0] >= "\u3400":
            if len(run) == 1:
                tokens.append(run)
                continue
            tokens.extend(w for w in segment(run) if len(w) > 1)
            tokens.extend(map(str.__add__, run[:-1], run[1:]))
        elif len(run) > 1 and run not in _STOP:
            tokens.append(_fold(run))
    tokens.extend((default_glossary() if glossary is None else glossary).concepts(norm))
    return tokens


def segment(run: str) -> list[str]:
    """Words of a run of CJK ideographs (rjieba: jieba's dictionary, compiled in Rust).

    jieba itself is unmaintained (NOTES.md); rjieba binds the maintained jieba-rs and ships
    its dictionary inside the wheel, so nothing is downloaded.
    """
    return [str(w) for w in rjieba.cut(run, hmm=True)]


def words(text: str, glossary: Glossary | None = None) -> list[str]:
    """Word-level tokens: segmented Chinese words of 2+ characters, Latin words, glossary
    concepts. Used where meaning matters more than spelling (category suggestion); on the
    category corpus, adding character bigrams lowered cross-validated accuracy (noise such
    as 单却 from 订单却少).

    Examples
    --------
    >>> words("想找银行续贷 bank loans", Glossary.from_data({"concepts": []}))
    ['银行', '续贷', 'bank', 'loan']
    """
    norm = normalise(text)
    tokens: list[str] = []
    for run in _RUNS.findall(norm):
        if run[0] >= "\u3400":
            tokens.extend(w for w in segment(run) if len(w) > 1)
        elif len(run) > 1 and run not in _STOP:
            tokens.append(_fold(run))
    tokens.extend((default_glossary() if glossary is None else glossary).concepts(norm))
    return tokens


@dataclass(frozen=True, slots=True)
class _Parts:
    """What a fitted vectorizer's transform and :func:`shared_terms` read, taken out once per
    model instead of on every call (the feature names are a sort of the whole vocabulary)."""

    vocabulary: dict[str, int]
    analyze: Callable[[str], Sequence[str]]
    idf: NDArray[np.float64]
    names: NDArray[np.object_]
    wide: NDArray[np.bool_]  # names longer than one character
    # the providers' vectors with each row's terms ascending (scikit-learn's fit leaves them
    # in first-seen order), for :func:`_pair_products`
    providers: sp.csr_array

    @classmethod
    def of(cls, vectorizer: TfidfVectorizer, providers: sp.csr_array) -> _Parts:
        if (vectorizer.sublinear_tf, vectorizer.norm, vectorizer.use_idf) != (True, "l2", True):
            raise ValueError("TextModel.transform follows sublinear tf, L2 norm and IDF only")
        names = vectorizer.get_feature_names_out()
        return cls(
            vocabulary=vectorizer.vocabulary_,
            analyze=vectorizer.build_analyzer(),
            idf=vectorizer.idf_,
            names=names,
            wide=np.char.str_len(names.astype(str)) > 1,
            providers=_canonical(providers),
        )


def _canonical(matrix: sp.csr_array) -> sp.csr_array:
    """A copy with each row's columns ascending and no duplicates (the same values)."""
    if matrix.has_canonical_format:
        return matrix
    ordered = matrix.copy()
    ordered.sum_duplicates()
    return ordered


@dataclass(frozen=True, slots=True)
class TextModel:
    """A fitted TF-IDF model with the providers' L2-normalised vectors.

    Attributes
    ----------
    vectorizer : TfidfVectorizer
        Fitted on the providers' expertise (sublinear tf, smooth idf, L2 norm).
    providers : csr_array, shape (n_providers, n_terms)
        Provider vectors, in the order given to :func:`fit_text_model`.
    """

    vectorizer: TfidfVectorizer
    providers: sp.csr_array
    # what transform and shared_terms read of the vectorizer, taken out once (_Parts)
    _parts: _Parts | None = field(default=None, init=False, repr=False, compare=False)

    def _taken(self) -> _Parts:
        parts = self._parts
        if parts is None:  # two threads may both build it: the same values either way
            parts = _Parts.of(self.vectorizer, self.providers)
            object.__setattr__(self, "_parts", parts)
        return parts

    def transform(self, texts: Sequence[str]) -> sp.csr_array:
        """L2-normalised TF-IDF rows, shape ``(len(texts), n_terms)``.

        The vectorizer's own ``transform``, step for step (counts of the vocabulary's
        tokens, indices sorted, ``1 + log`` tf, times IDF, rows scaled by scikit-learn's
        own L2 routine), without its input validation: a re-match part transforms a few
        texts, and the validation cost five times the arithmetic."""
        if not self.vectorizer.vocabulary_ or len(texts) == 0:
            shape = (len(texts), len(self.vectorizer.vocabulary_))
            return sp.csr_array(shape, dtype=np.float64)
        parts = self._taken()
        vocabulary, analyze = parts.vocabulary, parts.analyze
        indices: list[int] = []
        counts: list[int] = []
        indptr = [0]
        for text in texts:
            counter: dict[int, int] = {}
            for token in analyze(text):
                column = vocabulary.get(token)
                if column is not None:
                    counter[column] = counter.get(column, 0) + 1
            indices.extend(counter)
            counts.extend(counter.values())
            indptr.append(len(indices))
        matrix = sp.csr_array(
            (
                np.asarray(counts, dtype=np.float64),
                np.asarray(indices, dtype=np.int32),
                np.asarray(indptr, dtype=np.int32),
            ),
            shape=(len(texts), len(vocabulary)),
        )
        matrix.sort_indices()
        data = matrix.data
        np.log(data, data)
        data += 1.0
        data *= parts.idf[matrix.indices]
        inplace_csr_row_normalize_l2(matrix)
        return matrix

    def pair_similarity(
        self, requests: sp.csr_array, req: NDArray[np.intp], prov: NDArray[np.intp]
    ) -> NDArray[np.float64]:
        """Cosine similarity of pairs ``(requests[req[i]], providers[prov[i]])``, shape ``(n,)``.

        Used for pairs outside the blocked candidate pass (pins, fixed pairs); values are
        clipped into [0, 1] against round-off.
        """
        if len(req) == 0 or requests.shape[1] == 0:
            return np.zeros(len(req))
        product = requests[req].multiply(self.providers[prov])
        sums = np.asarray(product.sum(axis=1), dtype=np.float64).ravel()
        return np.clip(sums, 0.0, 1.0)


def shared_terms(
    model: TextModel,
    requests: sp.csr_array,
    req: NDArray[np.intp],
    prov: NDArray[np.intp],
    limit: int = 3,
) -> list[tuple[str, ...]]:
    """The tokens that carry each pair's text similarity, largest contribution first.

    A pair's cosine is the sum over shared tokens of ``request weight × provider weight``;
    the largest terms of that sum are what a reason quotes as evidence ("贷款", "§erp").
    Single characters are left out: they add to the score but mean little on their own.

    Parameters
    ----------
    requests : csr_array, shape (n_requests, n_terms)
    req, prov : ndarray of intp, shape (n,)
        Pairs as rows of ``requests`` and of ``model.providers``.
    limit : int
        At most this many tokens per pair.

    Returns
    -------
    list of tuple of str, length n
        Ties broken by vocabulary order, so equal inputs quote equal evidence.
    """
    if len(req) == 0 or requests.shape[1] == 0:
        return [() for _ in range(len(req))]
    parts = model._taken()
    names, wide = parts.names, parts.wide
    out: list[tuple[str, ...]] = []
    for cols, vals in _pair_products(requests, parts.providers, req, prov):
        keep = wide[cols]
        cols, vals = cols[keep], vals[keep]
        top = cols[np.lexsort((cols, -vals))[:limit]]
        out.append(tuple(str(t) for t in names[top]))
    return out


def _pair_products(
    requests: sp.csr_array,
    providers: sp.csr_array,
    req: NDArray[np.intp],
    prov: NDArray[np.intp],
) -> Iterator[tuple[NDArray[np.int32], NDArray[np.float64]]]:
    """Per pair, the terms both rows hold (ascending) and their products, zeros left out:
    the rows of ``requests[req].multiply(providers[prov])`` after ``eliminate_zeros``. Read
    off the two rows directly when both matrices are canonical (sorted, no duplicates): a
    re-match part explains a few pairs, and building the sparse product cost more than it."""
    if not (requests.has_canonical_format and providers.has_canonical_format):
        product = sp.csr_array(requests[req].multiply(providers[prov]))
        product.eliminate_zeros()
        for i in range(len(req)):
            lo, hi = product.indptr[i], product.indptr[i + 1]
            yield product.indices[lo:hi], product.data[lo:hi]
        return
    r_ptr, r_idx, r_val = requests.indptr, requests.indices, requests.data
    p_ptr, p_idx, p_val = providers.indptr, providers.indices, providers.data
    for r, p in zip(req.tolist(), prov.tolist(), strict=True):
        r_lo, r_hi, p_lo, p_hi = r_ptr[r], r_ptr[r + 1], p_ptr[p], p_ptr[p + 1]
        cols, mine, theirs = np.intersect1d(
            r_idx[r_lo:r_hi], p_idx[p_lo:p_hi], assume_unique=True, return_indices=True
        )
        vals = r_val[r_lo:r_hi][mine] * p_val[p_lo:p_hi][theirs]
        nonzero = vals != 0
        yield cols[nonzero], vals[nonzero]


@dataclass(frozen=True, slots=True)
class TokenMemoStats:
    """What the process's memo of analyzed texts holds and how its look-ups went.

    Attributes
    ----------
    texts : int
        Texts remembered now.
    hits, misses : int
        Look-ups of a text answered from the memo, and look-ups that had to analyze it,
        since the process started (a glossary change or a clear does not reset them).
    """

    texts: int
    hits: int
    misses: int


class _TokenMemo:
    """The analyzed tokens of provider texts, per glossary, least recently used out first.

    Analysis (normalising, segmenting, bigrams, glossary concepts) is nearly all of a fit's
    cost (~65 µs per text), while IDF and vectors are cheap counting. A re-match fits on
    the providers skilled in the request's categories, a thousand or more at 10k providers,
    and the next re-match in the process fits on mostly the same texts: tokens are a pure
    function of (text, glossary), so remembering them changes nothing but the time.
    Tokens are interned (a few thousand distinct ones are shared by every entry): about
    0.75 kB per text. Thread-safe (re-matches run in the API's request threads).
    """

    def __init__(self, max_texts: int) -> None:
        self.max_texts = max_texts
        self.lock = threading.Lock()
        self.glossary: Glossary | None = None  # the glossary the entries were analyzed with
        self.entries: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def tokens(self, texts: Sequence[str], glossary: Glossary | None) -> list[tuple[str, ...]]:
        """``analyze(text, glossary)`` of each text, as tuples."""
        return self._look_up(texts, glossary)[0]

    def warm(self, texts: Sequence[str], glossary: Glossary | None) -> int:
        """Analyze and remember the ``texts`` not remembered yet; how many that was."""
        return self._look_up(texts[-self.max_texts :], glossary)[1]

    def _look_up(
        self, texts: Sequence[str], glossary: Glossary | None
    ) -> tuple[list[tuple[str, ...]], int]:
        with self.lock:
            if glossary is not self.glossary:  # identity: glossaries are cached, immutable
                self.entries.clear()
                self.glossary = glossary
            entries = self.entries
            found = [entries.get(t) for t in texts]
            for text, tokens in zip(texts, found, strict=True):
                if tokens is not None:
                    entries.move_to_end(text)
        missing = {t for t, tokens in zip(texts, found, strict=True) if tokens is None}
        fresh = {t: tuple(map(sys.intern, analyze(t, glossary))) for t in missing}
        unknown = sum(tokens is None for tokens in found)
        with self.lock:
            self.hits += len(texts) - unknown
            self.misses += unknown
            if glossary is self.glossary:
                self.entries.update(fresh)
                while len(self.entries) > self.max_texts:
                    self.entries.popitem(last=False)
        given = [fresh[t] if got is None else got for t, got in zip(texts, found, strict=True)]
        return given, len(missing)

    def stats(self) -> TokenMemoStats:
        with self.lock:
            return TokenMemoStats(len(self.entries), self.hits, self.misses)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()
            self.glossary = None


#: Per process. 100,000 texts is twice the providers of a province run (~75 MB when full).
_TOKENS = _TokenMemo(max_texts=100_000)


def clear_token_memo() -> None:
    """Forget every remembered analysis (benchmarks measuring a process's first fit)."""
    _TOKENS.clear()


def warm_token_memo(texts: Sequence[str], glossary: Glossary | None = None) -> int:
    """Analyze ``texts`` into the process's memo ahead of the fits that will read them.

    A process's first re-match otherwise analyzes every provider text it fits on (~0.1 s
    at 10k providers, more with the segmenter's dictionary and the glossary still to
    load). ``texts`` and ``glossary`` must be exactly what a fit will be handed (the
    providers' expertise as the problem carries it, the problem's glossary object, None
    for the shipped one), or the fit misses all the same. At most the memo's size, the
    last texts kept. Returns how many texts were analyzed (those remembered already are
    not analyzed again).
    """
    return _TOKENS.warm(texts, glossary)


def token_memo_stats() -> TokenMemoStats:
    """Size and hit/miss counts of the process's memo of analyzed texts."""
    return _TOKENS.stats()


def _given(tokens: tuple[str, ...]) -> tuple[str, ...]:
    """The analyzer a fit runs with: its documents are already token tuples."""
    return tokens


def fit_text_model(expertise: Sequence[str], glossary: Glossary | None = None) -> TextModel:
    """Fit TF-IDF on the providers' ``expertise`` texts (shape ``(n_providers,)``).

    ``glossary`` is the problem's (:class:`matching.Lexicon`); None means the shipped one.
    An empty corpus, or one without any token, gives an empty vocabulary and all-zero
    similarities rather than an error: text is one feature among five.

    The texts' tokens come from the process's memo (:class:`_TokenMemo`), so the fit runs
    on token tuples; the fitted vectorizer then gets the real analyzer for the requests'
    texts it transforms. Vocabulary, IDF and vectors are those of fitting on the texts.
    """
    tokens = _TOKENS.tokens(list(expertise), glossary)
    vectorizer = TfidfVectorizer(analyzer=_given, sublinear_tf=True, dtype=np.float64)
    try:
        matrix = sp.csr_array(vectorizer.fit_transform(tokens))
    except ValueError:  # empty vocabulary: no provider wrote anything usable
        vectorizer.vocabulary_ = {}
        matrix = sp.csr_array((len(expertise), 0), dtype=np.float64)
    vectorizer.set_params(analyzer=partial(analyze, glossary=glossary))
    return TextModel(vectorizer, matrix)


@dataclass(frozen=True, slots=True)
class TextCache:
    """A run's fitted model and request vectors, reusable by a later run on the same texts.

    Attributes
    ----------
    model : TextModel
        Fitted on ``prov_text``.
    prov_text : tuple of str, shape (n_providers,)
        Expertise texts in canonical (id) order; the model is reusable iff they are equal.
    req_ids, req_text : tuple, shape (n_requests,)
        Request ids and texts in canonical order, rows of ``requests``.
    requests : csr_array, shape (n_requests, n_terms)
    glossary : Glossary or None
        The glossary the model was fitted with; reusable only with the same one.
    """

    model: TextModel
    prov_text: tuple[str, ...]
    req_ids: tuple[object, ...]
    req_text: tuple[str, ...]
    requests: sp.csr_array
    glossary: Glossary | None = None


def vectorise(
    prov_text: tuple[str, ...],
    req_ids: tuple[object, ...],
    req_text: tuple[str, ...],
    cache: TextCache | None = None,
    glossary: Glossary | None = None,
) -> TextCache:
    """Fit on ``prov_text`` and transform ``req_text``, reusing ``cache`` where it applies.

    The model is reused when the providers' texts and the glossary are unchanged; a
    request row is reused when its id and text are unchanged. TF-IDF is a pure function
    of (model, text), so the result is identical to computing everything afresh, only
    cheaper after small changes.
    """
    if cache is None or cache.prov_text != prov_text or cache.glossary != glossary:
        model = fit_text_model(prov_text, glossary)
        requests = model.transform(req_text)
        return TextCache(model, prov_text, req_ids, req_text, requests, glossary)
    position = {rid: i for i, rid in enumerate(cache.req_ids)}
    old = np.array([position.get(rid, -1) for rid in req_ids], dtype=np.intp)
    reuse = np.array(
        [
            o >= 0 and cache.req_text[o] == text
            for o, text in zip(old.tolist(), req_text, strict=True)
        ],
        dtype=bool,
    )
    fresh = np.flatnonzero(~reuse)
    new_rows = cache.model.transform([req_text[i] for i in fresh])
    if len(fresh) == len(req_ids):  # nothing reused (a re-match's next part): rows as they are
        return TextCache(cache.model, prov_text, req_ids, req_text, new_rows, glossary)
    index = np.where(reuse, old, 0)
    index[fresh] = len(cache.req_ids) + np.arange(len(fresh))
    requests = sp.csr_array(sp.vstack([cache.requests, new_rows], format="csr")[index])
    return TextCache(cache.model, prov_text, req_ids, req_text, requests, glossary)
