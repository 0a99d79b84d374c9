"""The detect worker (facecmp/detect_worker.py): a compare whose reference photo is detected in
the worker process gives the one-process result bit for bit; the worker ends with its comparer."""
from __future__ import annotations

import itertools
from dataclasses import replace

import pytest

from facecmp import FaceComparer
from facecmp.settings import FacecmpSettings

pytestmark = pytest.mark.slow  # starts a process that loads the detector


def test_compares_with_the_detect_worker_equal_one_process_compares(fast_comparer, celebrity_photos):
    people = sorted(celebrity_photos)
    pairs = [tuple(celebrity_photos[p][:2]) for p in people]
    pairs += [(celebrity_photos[a][0], celebrity_photos[b][0]) for a, b in itertools.combinations(people, 2)]
    compute = replace(fast_comparer.compute, threads=2)
    one_process = FaceComparer("fast", settings=FacecmpSettings(detect_worker=False), compute=compute,
                               detector=fast_comparer.detector)
    with FaceComparer("fast", settings=FacecmpSettings(detect_worker=True), compute=compute,
                      detector=fast_comparer.detector) as comparer:
        comparer.compare(*pairs[0])   # starts the worker; this compare ran here
        worker = comparer._detect_worker
        assert worker is not None and worker.wait_ready(120)
        for a, b in pairs:
            split, alone = (c.compare(a, b) for c in (comparer, one_process))
            assert (split.score, split.cosine, split.similarity) == (alone.score, alone.cosine, alone.similarity)
            assert split.calibration_notes == alone.calibration_notes
            assert [f.to_dict() for f in split.faces] == [f.to_dict() for f in alone.faces]
        assert worker.photos_detected == len(pairs)
        process = worker._process
    assert process.poll() is not None   # closed with its comparer
    assert one_process._detect_worker is None


def test_a_one_thread_pipeline_starts_no_detect_worker(fast_comparer, celebrity_photos):
    """The service's inference workers and eval's worker processes compute on one thread: no core to spare."""
    comparer = FaceComparer("fast", compute=replace(fast_comparer.compute, threads=1), detector=fast_comparer.detector)
    comparer.compare(*celebrity_photos["madonna"][:2])
    assert comparer._detect_worker is None
