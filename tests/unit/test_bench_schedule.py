"""Bench C's schedule: warm-up rounds first and counted in no figure, then round-robin runs."""

from __future__ import annotations

from bench.realpath import c_schedule
from bench.report import _feed_sentence, _warmup_lines

ONE_K = ("1k", 1000.0, 10.0, True)
TWENTY_K = ("20k", 20000.0, 10.0, True)


def test_warm_up_rounds_come_first_with_runs_below_one_then_every_point_per_round():
    order = c_schedule([ONE_K, TWENTY_K], warmup_rounds=2, repeat=2)
    assert [(spec[0], run) for spec, run, _ in order] == [
        ("1k", -1), ("20k", -1), ("1k", 0), ("20k", 0),  # warm-up: counted in no figure
        ("1k", 1), ("20k", 1), ("1k", 2), ("20k", 2),
    ]  # fmt: skip
    labels = [label for *_, label in order]
    assert labels[0] == " (warm-up 1/2, not counted)"
    assert labels[3] == " (warm-up 2/2, not counted)"
    assert labels[-1] == " (run 2/2)"


def test_a_single_run_without_warm_up_is_one_unlabelled_round():
    assert c_schedule([TWENTY_K], warmup_rounds=0, repeat=1) == [(TWENTY_K, 1, "")]


def test_the_report_sets_the_first_warm_up_rounds_emulator_cpu_beside_the_measured_one():
    warmups = [
        {"name": "20k", "run": -1, "emulator_cpu_frac": 0.55},
        {"name": "20k", "run": 0, "emulator_cpu_frac": 0.2},
    ]
    lines = _warmup_lines([{"name": "20k", "emulator_cpu_frac": 0.08}], warmups)
    assert "2 warm-up round(s)" in lines[1]
    assert "20k 0.55 -> 0.08." in lines[1]
    assert "cold JIT" in _warmup_lines([{"name": "20k"}], [])[1]


def test_the_report_says_at_what_priority_the_feed_ran():
    assert "nice 10, the server, the hop and the load client at 0" in _feed_sentence(
        [{"name": "1k", "feed_nice": 10}]
    )
    assert "same CPU priority" in _feed_sentence([{"name": "1k", "feed_nice": 0}])
    assert _feed_sentence([{"name": "1k"}]) == ""  # a run from before the option
