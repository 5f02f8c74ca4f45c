"""Text embeddings: cached by text, truncated with one clear warning, bad types refused."""

from __future__ import annotations

import logging

import pytest
import torch

from iris_model import InputError
from iris_model.testing import make_tiny_pipeline


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    return make_tiny_pipeline(work_dir=tmp_path_factory.mktemp("tok"))


def test_unchanged_description_is_encoded_once(pipe):
    calls = []
    encode = pipe.text_embeddings.encode
    pipe.text_embeddings.encode = lambda ids: calls.append(ids) or encode(ids)
    pipe.text_embeddings.clear()
    for _ in range(5):
        pipe.embed_text("a narrow corridor, a chair close on the left")
    assert len(calls) == 1
    pipe.embed_text("something else")
    assert len(calls) == 2
    pipe.text_embeddings.encode = encode


def test_lru_evicts_oldest(pipe):
    cache = pipe.text_embeddings
    cache.clear()
    for i in range(cache.capacity + 3):
        cache(f"text {i}")
    assert len(cache._cache) == cache.capacity
    assert "text 0" not in cache._cache and f"text {cache.capacity + 2}" in cache._cache


def test_long_text_truncated_with_one_warning(pipe, caplog):
    pipe.text_embeddings.clear()
    text = "chair " * 200
    with caplog.at_level(logging.WARNING, logger="iris_model.text"):
        emb = pipe.embed_text(text)
        pipe.embed_text(text)
    warnings = [r for r in caplog.records if "truncated" in r.getMessage()]
    assert len(warnings) == 1
    assert "tokens dropped" in warnings[0].getMessage()
    assert emb.shape[1] == pipe.tokenizer.model_max_length


def test_endless_and_non_ascii_text(pipe):
    pipe.text_embeddings.clear()
    emb = pipe.embed_text("é" * 20_000)
    assert emb.shape[1] == pipe.tokenizer.model_max_length
    assert torch.isfinite(emb).all()
    assert pipe.embed_text("Ein schmaler Flur, 椅子 links").shape[1] > 2


def test_non_string_text_refused(pipe):
    with pytest.raises(InputError, match="must be a str"):
        pipe.embed_text(42)  # type: ignore[arg-type]


def test_normalize_text() -> None:
    from iris_model.text import normalize_text

    assert normalize_text(None) == ""
    assert normalize_text("  \t ") == ""
    assert normalize_text("  a narrow corridor \n") == "a narrow corridor"
    with pytest.raises(InputError, match="must be a str or None, got int"):
        normalize_text(42)  # type: ignore[arg-type]


def test_capacity_is_checked_and_one_works(pipe):
    from iris_model.text import TextEmbeddingCache

    with pytest.raises(ValueError, match=r"^capacity must be >= 1$"):
        TextEmbeddingCache(pipe.tokenizer, pipe.components.encode_text, capacity=0)
    one = TextEmbeddingCache(pipe.tokenizer, pipe.components.encode_text, capacity=1)
    one("a room")
    one("a corridor")
    assert list(one._cache) == ["a corridor"]
    assert (one.hits, one.misses) == (0, 2)


def test_hits_and_misses_are_counted(pipe):
    from iris_model.text import TextEmbeddingCache

    cache = TextEmbeddingCache(pipe.tokenizer, pipe.components.encode_text, capacity=2)
    assert (cache.hits, cache.misses) == (0, 0)
    a = cache("a room")
    assert cache(" a room ") is a  # the same description once normalized
    cache(None)
    cache("")
    cache("a room")
    assert (cache.hits, cache.misses) == (3, 2)
    cache("a corridor")  # evicts the least recently used: "" (None)
    assert list(cache._cache) == ["a room", "a corridor"]


def _truncation_warnings(pipe, caplog, text: str) -> list[str]:
    pipe.text_embeddings.clear()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="iris_model.text"):
        pipe.embed_text(text)
    return [r.getMessage() for r in caplog.records if r.name == "iris_model.text"]


def test_truncation_warning_counts_exactly(pipe, caplog):
    from iris_model.text import MAX_TEXT_CHARS

    limit = pipe.tokenizer.model_max_length
    # Single-letter words are one token each here; <start> and <end> take two more. Counted by the tokenizer.
    fits = "a " * (limit - 2)
    assert len(pipe.tokenizer(fits)["input_ids"]) == limit
    assert _truncation_warnings(pipe, caplog, fits) == []
    one_over = "a " * (limit - 1)
    assert len(pipe.tokenizer(one_over)["input_ids"]) == limit + 1
    assert _truncation_warnings(pipe, caplog, one_over) == [
        f"description truncated to the text encoder's limit of {limit} tokens: 1 tokens dropped"
    ]
    # Exactly MAX_TEXT_CHARS characters reach the tokenizer whole; 5 more are cut before it (and said so).
    at_limit = "b" * MAX_TEXT_CHARS
    dropped = len(pipe.tokenizer(at_limit)["input_ids"]) - limit
    assert _truncation_warnings(pipe, caplog, at_limit) == [
        f"description truncated to the text encoder's limit of {limit} tokens: {dropped} tokens dropped"
    ]
    for extra in (1, 5):
        assert _truncation_warnings(pipe, caplog, at_limit + "b" * extra) == [
            f"description truncated to the text encoder's limit of {limit} tokens: {dropped} tokens dropped"
            f" (and {extra} characters before tokenizing)"
        ]
