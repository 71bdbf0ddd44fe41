"""The script-aware analyzer, the bilingual glossary and TF-IDF similarity."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from matching.scoring.glossary import CONCEPT_PREFIX, Glossary, default_glossary
from matching.scoring.text import (
    _pair_products,
    _TokenMemo,
    analyze,
    clear_token_memo,
    fit_text_model,
    normalise,
    vectorise,
)


class TestAnalyzer:
    def test_chinese_runs_give_words_and_bigrams_not_characters(self) -> None:
        tokens = analyze("原材料涨价", Glossary.from_data({"concepts": []}))
        assert tokens == ["原材料", "涨价", "原材", "材料", "料涨", "涨价"]
        assert "原" not in analyze("原材料涨价")

    def test_a_lone_character_is_kept(self) -> None:
        assert "钱" in analyze("缺 钱")

    def test_colloquial_request_meets_the_providers_jargon(self) -> None:
        model = fit_text_model(
            [
                "商业银行普惠金融部，专做小微企业流动资金贷款、无还本续贷、授信",
                "知识产权代理，专利申请和商标注册",
            ]
        )
        sims = model.transform(["银行说明年不给续贷了，贷款下个月到期"]) @ model.providers.T
        bank, ip = sims.toarray().ravel()
        assert bank > 0.3
        assert ip < 0.05

    def test_latin_runs_give_words_without_stop_words(self) -> None:
        tokens = [
            t for t in analyze("The patents and the trademarks") if not t.startswith(CONCEPT_PREFIX)
        ]
        assert tokens == ["patent", "trademark"]

    def test_mixed_script_splits_at_script_boundaries(self) -> None:
        tokens = analyze("上线ERP系统")
        assert {"上线", "erp", "系统"} <= set(tokens)
        assert "线e" not in tokens
        assert "线erp" not in tokens

    def test_nfkc_folds_full_width_and_case(self) -> None:
        assert normalise("ＥＲＰ　Ｓｙｓｔｅｍ") == "erp system"
        assert set(analyze("ＥＲＰ")) == set(analyze("erp"))

    @pytest.mark.parametrize("text", ["", "   ", "，。！", "12345"])
    def test_no_tokens_from_noise(self, text: str) -> None:
        assert analyze(text) == []


class TestGlossary:
    @pytest.mark.parametrize(
        ("zh", "en", "concept"),
        [
            ("数据库", "database", "database"),
            ("专利申请", "patent application", "patent"),
            ("跨境电商", "cross-border ecommerce", "export"),
            ("应收账款", "accounts receivable", "receivables"),
            ("反倾销", "anti-dumping", "trade_remedy"),
            ("专精特新", "little giant", "srdi"),
        ],
    )
    def test_bridges_chinese_and_english(self, zh: str, en: str, concept: str) -> None:
        token = CONCEPT_PREFIX + concept
        assert token in analyze(zh)
        assert token in analyze(en)

    def test_longest_term_wins(self) -> None:
        assert default_glossary().concepts(normalise("数据库")) == [CONCEPT_PREFIX + "database"]

    def test_english_terms_match_whole_words_and_plurals(self) -> None:
        g = default_glossary()
        assert g.concepts("databases") == [CONCEPT_PREFIX + "database"]
        assert g.concepts("sqlite") == []

    def test_custom_glossary(self) -> None:
        g = Glossary.from_data({"concepts": [{"id": "x", "zh": ["甲乙"], "en": ["alpha beta"]}]})
        assert g.concepts("甲乙 and alpha  beta".replace("  ", " ")) == [CONCEPT_PREFIX + "x"] * 2
        assert len(g) == 1

    def test_shipped_glossary_covers_many_concepts(self) -> None:
        assert len(default_glossary()) >= 60


class TestSimilarity:
    def test_cross_language_ranking(self) -> None:
        model = fit_text_model(["数据库设计与数据治理", "专利申请与商标注册", "出口报关"])
        query = model.transform(["We need help with our database"])
        sims = (query @ model.providers.T).toarray().ravel()
        assert sims.argmax() == 0
        assert sims[0] > 0

    def test_similarities_are_cosines_in_unit_interval(self) -> None:
        texts = ["融资 贷款", "loan financing", "专利", ""]
        model = fit_text_model(texts)
        sims = (model.transform(texts) @ model.providers.T).toarray()
        assert np.all((sims >= -1e-12) & (sims <= 1 + 1e-12))
        assert np.allclose(np.diag(sims)[:3], 1.0)

    def test_pair_similarity_matches_the_product(self) -> None:
        model = fit_text_model(["融资 贷款", "patent 专利", "export customs"])
        queries = model.transform(["bank loan 贷款", "专利侵权", "出口"])
        req, prov = np.array([0, 1, 2, 0]), np.array([0, 1, 2, 2])
        full = (queries @ model.providers.T).toarray()
        assert np.allclose(model.pair_similarity(queries, req, prov), full[req, prov])

    def test_pair_products_read_off_the_rows_equal_the_sparse_product(self) -> None:
        """shared_terms reads each pair's common terms off the two rows; the same columns
        and the same products, bit for bit, as the sparse product it replaced."""
        model = fit_text_model(
            ["融资 贷款 银行 授信", "patent 专利 商标", "export customs 出口", ""]
        )
        queries = model.transform(["bank loan 贷款 授信", "专利侵权 patent", "出口", "无关"])
        req, prov = np.array([0, 1, 2, 3, 0, 1]), np.array([0, 1, 2, 0, 3, 0])
        product = sp.csr_array(queries[req].multiply(model.providers[prov]))
        product.eliminate_zeros()
        ordered = model._taken().providers  # rows' terms ascending: what shared_terms reads
        assert ordered.has_canonical_format
        assert queries.has_canonical_format
        for i, (cols, vals) in enumerate(_pair_products(queries, ordered, req, prov)):
            lo, hi = product.indptr[i], product.indptr[i + 1]
            order = np.argsort(product.indices[lo:hi])
            assert np.array_equal(cols, product.indices[lo:hi][order])
            assert np.array_equal(vals.view(np.uint64), product.data[lo:hi][order].view(np.uint64))

    def test_empty_corpus(self) -> None:
        model = fit_text_model([])
        assert model.transform(["anything"]).shape == (1, 0)

    def test_transform_is_the_vectorizers_own_bit_for_bit(self) -> None:
        """TextModel.transform skips scikit-learn's validation, not a step of its arithmetic:
        counts, sorted indices, 1 + log tf, IDF and the L2 scaling give the very same bits."""
        providers = [
            "商业银行普惠金融部，专做小微企业流动资金贷款、无还本续贷、授信",
            "ERP 系统实施 database design 数据治理 数据 数据",
            "专利申请 patent trademark 商标注册 商标",
            "出口报关 customs export 跨境电商 export export",
            "",
        ]
        texts = [
            "银行说明年不给续贷了，贷款下个月到期 贷款 贷款",
            "We need ERP and database help, database!",
            "",
            "zzzz 无关",
            "专利 patent 出口 customs 贷款 ERP 数据",
        ]
        model = fit_text_model(providers)
        for chosen in (texts, texts[:1], texts[2:4], texts[::-1]):
            ours = model.transform(chosen)
            theirs = sp.csr_array(model.vectorizer.transform(chosen))
            assert ours.shape == theirs.shape
            assert ours.indices.dtype == theirs.indices.dtype
            assert np.array_equal(ours.indptr, theirs.indptr)
            assert np.array_equal(ours.indices, theirs.indices)
            assert np.array_equal(ours.data.view(np.uint64), theirs.data.view(np.uint64))


class TestCache:
    providers = ("数据库 database", "专利 patent", "出口 export")

    def test_reuse_gives_the_same_vectors_as_a_fresh_fit(self) -> None:
        first = vectorise(self.providers, ("a", "b", "c"), ("数据库", "patent law", "报关"))
        ids, texts = ("b", "c", "d"), ("patent law", "出口报关 customs", "database 数据库")
        again = vectorise(self.providers, ids, texts, first)
        fresh = vectorise(self.providers, ids, texts)
        assert again.model is first.model
        assert np.array_equal(again.requests.toarray(), fresh.requests.toarray())
        assert again.requests.shape == fresh.requests.shape

    def test_nothing_reused_gives_the_fresh_vectors(self) -> None:
        first = vectorise(self.providers, ("a",), ("数据库",))
        ids, texts = ("x", "y"), ("patent law 专利", "出口报关 customs")
        again = vectorise(self.providers, ids, texts, first)
        fresh = vectorise(self.providers, ids, texts)
        assert again.model is first.model
        assert again.requests.shape == fresh.requests.shape
        assert np.array_equal(again.requests.toarray(), fresh.requests.toarray())

    def test_changed_provider_texts_refit(self) -> None:
        first = vectorise(self.providers, ("a",), ("数据库",))
        again = vectorise((*self.providers, "商标 trademark"), ("a",), ("数据库",), first)
        assert again.model is not first.model


class TestTokenMemo:
    """Fits take providers' tokens from a per-process memo: nothing may change but time."""

    texts = ("数据库设计与数据治理", "专利申请与商标注册 patents", "出口报关 export customs", "")

    @staticmethod
    def plain_fit(
        texts: Sequence[str], glossary: Glossary | None = None
    ) -> tuple[Any, TfidfVectorizer]:
        vectorizer = TfidfVectorizer(
            analyzer=partial(analyze, glossary=glossary), sublinear_tf=True, dtype=np.float64
        )
        return vectorizer.fit_transform(texts), vectorizer

    def test_a_remembered_fit_equals_fitting_on_the_texts(self) -> None:
        clear_token_memo()
        cold = fit_text_model(self.texts)
        warm = fit_text_model(self.texts[1:] + self.texts[:1])  # all remembered, other order
        expected, vectorizer = self.plain_fit(self.texts)
        assert cold.vectorizer.vocabulary_ == vectorizer.vocabulary_
        assert np.array_equal(cold.providers.toarray(), expected.toarray())
        assert warm.vectorizer.vocabulary_ == vectorizer.vocabulary_
        assert np.array_equal(warm.providers.toarray()[[3, 0, 1, 2]], expected.toarray())

    def test_the_fitted_model_analyzes_new_texts_itself(self) -> None:
        model = fit_text_model(self.texts)
        _, vectorizer = self.plain_fit(self.texts)
        query = ["We need a database and patents 数据库"]
        assert np.array_equal(
            model.transform(query).toarray(), vectorizer.transform(query).toarray()
        )

    def test_another_glossary_is_not_served_the_first_ones_tokens(self) -> None:
        none = Glossary.from_data({"concepts": []})
        fit_text_model(self.texts)  # remembered with the shipped glossary
        model = fit_text_model(self.texts, none)
        expected, vectorizer = self.plain_fit(self.texts, none)
        assert model.vectorizer.vocabulary_ == vectorizer.vocabulary_
        assert not any(t.startswith(CONCEPT_PREFIX) for t in model.vectorizer.vocabulary_)
        assert np.array_equal(model.providers.toarray(), expected.toarray())

    def test_the_memo_keeps_at_most_its_bound_dropping_the_least_recent(self) -> None:
        memo = _TokenMemo(max_texts=2)
        memo.tokens(["a b", "c d"], None)
        memo.tokens(["a b"], None)  # "a b" is now the most recent
        memo.tokens(["e f"], None)
        assert list(memo.entries) == ["a b", "e f"]
        assert memo.tokens(["c d", "a b"], None) == [tuple(analyze("c d")), tuple(analyze("a b"))]
