"""Bench C's `--repeat`: how a point's runs become the one figure the report shows."""

from __future__ import annotations

from bench.realpath import median_of_runs


def _run(p99: float, added: float, delivered: float = 1.0, gaps: int = 0) -> dict[str, object]:
    return {"name": "20k", "p99": p99, "added_p99": added, "delivered": delivered, "gaps": gaps,
            "ok": delivered == 1.0, "stack": "ticker-serve"}  # fmt: skip


def test_figures_are_medians_and_correctness_is_the_worst_run():
    point = median_of_runs([_run(100, 50), _run(300, 170, 0.99, 2), _run(200, 90, 1.0, 1)])
    assert point["p99"] == 200
    assert point["added_p99"] == 90  # the median of each run's own added p99
    assert point["added_p99_range"] == [50, 170]
    assert point["delivered"] == 0.99  # a tick lost in one run is lost
    assert point["gaps"] == 2
    assert point["ok"] is False
    assert point["runs"] == 3
    assert point["stack"] == "ticker-serve"


def test_counts_stay_integers():
    runs = [{**_run(100, 50), "clients": 1000}, {**_run(120, 60), "clients": 1000}]
    assert median_of_runs(runs)["clients"] == 1000
    assert isinstance(median_of_runs(runs)["clients"], int)


def test_a_figure_missing_from_one_run_has_no_median():
    runs = [_run(100, 50), {**_run(200, 90), "added_p99": None}]
    assert median_of_runs(runs)["added_p99"] is None


def test_a_single_run_is_reported_as_it_is():
    assert median_of_runs([_run(100, 50)]) == {**_run(100, 50), "runs": 1}
