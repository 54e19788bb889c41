from __future__ import annotations

import gc

import pytest

from local_pipeline.collector import RUN_THRESHOLDS, fewer_collections


def test_a_run_collects_less_often_and_puts_everything_back_afterwards() -> None:
    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    with fewer_collections():
        assert gc.get_threshold() == RUN_THRESHOLDS
        assert gc.get_freeze_count() > frozen_before  # what existed before the run is out of the collector's way
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_the_settings_are_put_back_when_the_run_fails() -> None:
    before = gc.get_threshold()
    with pytest.raises(RuntimeError), fewer_collections():
        raise RuntimeError("the run failed")
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_nested_run_leaves_the_settings_to_the_outer_one() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        with fewer_collections():
            assert gc.get_threshold() == RUN_THRESHOLDS
        assert gc.get_threshold() == RUN_THRESHOLDS  # the inner exit did not undo the outer run's settings
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
