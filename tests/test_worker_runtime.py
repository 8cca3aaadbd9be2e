"""How Celery workers run CSP's tasks: garbage collection kept out of the way of big chunks."""

import gc

import pytest

from csp.celery import _freeze_startup_objects
from health.tasks import garbage_collection_paused


def test_garbage_collection_is_paused_during_a_chunk_and_back_after_even_on_error():
    assert gc.isenabled()
    with garbage_collection_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), garbage_collection_paused():
        raise RuntimeError("chunk failed")
    assert gc.isenabled()


def test_a_worker_freezes_what_it_loaded_at_start():
    try:
        _freeze_startup_objects()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
