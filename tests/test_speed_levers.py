"""The speed levers change no result: batched, split and channels-last embeddings equal the plain ones."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from serve.engine import BatchingComparer, EmbedBatcher


def test_split_compare_equals_compare(fast_comparer, celebrity_photos):
    a, b = celebrity_photos["ben_afflek"][:2]
    whole = fast_comparer.compare(a, b)
    prepared = fast_comparer.prepare_compare(a, b)
    split = fast_comparer.finish_compare(prepared, fast_comparer.embed_crops(prepared.crops))
    assert split.cosine == pytest.approx(whole.cosine, abs=1e-6)
    assert split.is_match == whole.is_match
    assert [f.face.box for f in split.faces] == [f.face.box for f in whole.faces]
    assert list(split.timings_ms) == ["decode", "detect", "crop", "score", "total"]


@pytest.mark.parametrize("mode", ["fast", "accurate"])
def test_crops_of_several_compares_embed_as_one_by_one(fast_comparer, celebrity_photos, mode):
    photos = [p for person in sorted(celebrity_photos) for p in celebrity_photos[person][:2]][:6]
    prepared = [fast_comparer.prepare_compare(photos[i], photos[i + 1], mode=mode) for i in range(0, 6, 2)]
    together = fast_comparer.embed_crops(np.concatenate([p.crops for p in prepared]), mode=mode)
    one_by_one = np.concatenate([fast_comparer.embed_crops(p.crops[i:i + 1], mode=mode)
                                 for p in prepared for i in range(2)])
    assert np.abs(together - one_by_one).max() < 1e-5


def test_channels_last_equals_plain_layout(celebrity_photos):
    from facecmp.embed import Embedder

    crops = np.random.default_rng(0).integers(0, 256, (3, 160, 160, 3), dtype=np.uint8)
    fast, plain = Embedder("msceleb-128", channels_last=True), Embedder("msceleb-128", channels_last=False)
    assert np.abs(fast.embed(crops) - plain.embed(crops)).max() < 1e-5


def test_batcher_combines_concurrent_crops_and_returns_each_its_rows():
    calls: list[int] = []

    def embed(crops: np.ndarray, mode: str) -> np.ndarray:
        calls.append(len(crops))
        return crops.reshape(len(crops), -1).astype(np.float32) * (2 if mode == "fast" else 3)

    batcher = EmbedBatcher(embed, window_s=5.0, max_crops=64)
    slots = [batcher.slot() for _ in range(4)]  # four compares being prepared at once
    results: dict[int, np.ndarray] = {}

    def submit(i: int) -> None:
        results[i] = slots[i].embed(np.full((2, 1), i, np.uint8), "fast")

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert calls == [8]  # one forward pass for the four compares
    for i in range(4):
        assert results[i].tolist() == [[2 * i], [2 * i]]


def test_batcher_never_waits_alone_and_a_failed_prepare_releases_the_batch():
    batcher = EmbedBatcher(lambda crops, mode: crops.astype(np.float32), window_s=30.0, max_crops=64)
    with batcher.slot():
        pass  # a compare that failed before its embedding step (no face, bad image)
    with batcher.slot() as slot:
        assert slot.embed(np.ones((2, 1), np.uint8), "fast").shape == (2, 1)  # would hang on a leak


def test_batcher_raises_the_embed_error_in_every_thread():
    def embed(crops, mode):
        raise RuntimeError("boom")

    batcher = EmbedBatcher(embed, window_s=0.0, max_crops=4)
    with batcher.slot() as slot, pytest.raises(RuntimeError, match="boom"):
        slot.embed(np.ones((2, 1), np.uint8), "fast")


def test_batching_comparer_equals_plain_comparer_under_concurrency(fast_comparer, celebrity_photos):
    batcher = EmbedBatcher(lambda crops, mode: fast_comparer.embed_crops(crops, mode=mode),
                           window_s=2.0, max_crops=16)
    scheduled = BatchingComparer(fast_comparer, batcher)
    people = sorted(celebrity_photos)
    pairs = [(celebrity_photos[people[i]][0], celebrity_photos[people[(i + k) % len(people)]][1])
             for i in range(len(people)) for k in (0, 1)][:4]
    expected = [fast_comparer.compare(a, b) for a, b in pairs]
    got: dict[int, object] = {}
    threads = [threading.Thread(target=lambda i=i: got.__setitem__(i, scheduled.compare(*pairs[i])))
               for i in range(len(pairs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    for i, result in enumerate(expected):
        assert got[i].cosine == pytest.approx(result.cosine, abs=1e-5)
        assert got[i].is_match == result.is_match
    assert scheduled.decode_limits is fast_comparer.decode_limits  # everything else passes through
