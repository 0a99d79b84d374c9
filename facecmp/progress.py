"""What a slow first-run step is doing, one line on stderr as it starts and one as it ends.

Converting weights and compiling the OpenVINO copies of the networks happen once per machine
(then they are cached) and take up to a minute: without a word a first ``facecmp compare``
looks hung. These lines are the only thing the library prints; they name files and weight
sets, never anything of a user's images.
"""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def step(what: str, note: str = "") -> Iterator[None]:
    """``facecmp: <what> (<note>) ...`` on stderr, then ``facecmp: <what>: done in 12.3 s`` (or ``failed``)."""
    print(f"facecmp: {what}{f' ({note})' if note else ''} ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    outcome = "failed"
    try:
        yield
        outcome = "done"
    finally:
        print(f"facecmp: {what}: {outcome} in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
