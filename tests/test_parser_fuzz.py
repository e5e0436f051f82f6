"""Every parser against hostile inputs (issue 11): a clear TrucewatchError or per-row
quarantine, never a traceback. A few hypothesis examples per parser here, in every run;
``benchmarks/parser_fuzz.py`` runs thousands (and atheris) and reports the counts."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lab.hostile import PARSERS, SEEDS, SPECIAL, judge, strategy, targets

_TARGETS: dict[str, Callable[[bytes], object]] = {}


def _target(name: str) -> Callable[[bytes], object]:
    if not _TARGETS:
        _TARGETS.update(targets())
    return _TARGETS[name]


@pytest.mark.parametrize("parser", PARSERS)
def test_seeds_parse(parser: str) -> None:
    for seed in SEEDS[parser]:
        assert judge(_target(parser), seed) is None


@pytest.mark.parametrize("parser", list(SPECIAL))
def test_known_hostile_inputs(parser: str) -> None:
    for data in SPECIAL[parser]:
        assert judge(_target(parser), data) is None, data[:80]


@pytest.mark.parametrize("parser", PARSERS)
def test_hypothesis_inputs_never_give_a_traceback(parser: str) -> None:
    target = _target(parser)

    @settings(max_examples=20, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data: st.DataObject) -> None:
        raw = data.draw(strategy(parser))
        tb = judge(target, raw)
        assert tb is None, tb

    run()
