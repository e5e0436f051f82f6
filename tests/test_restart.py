"""Restart (issue 13): kill -9 of the server (its worker thread dies with it) and of a
standalone `trucewatch worker` during the replayed stream; after the restart the final
state equals an uninterrupted run's (benchmarks/lab/restart.py; the 20-trial benchmark
is benchmarks/restart_trials.py). The replay resends what got no answer."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from lab.restart import MODES, differences, run_once, trial
from trucewatch.demo import ScenarioFiles
from trucewatch.replay import Item, _post


@pytest.mark.slow
def test_kill9_of_the_server_and_of_the_worker(scenario: ScenarioFiles,
                                              tmp_path: Path) -> None:
    ref = run_once(tmp_path / "reference", scenario.root, "server")
    assert ref.problems == [] and differences(ref.state, ref.state) == []
    assert ref.state["incidents"] and ref.state["watermark"] == ref.state["batch_count"]
    for n in (1, 2):  # trial 1 kills the server, trial 2 the standalone worker
        r = trial(tmp_path / f"trial-{n}", scenario.root, ref.state, n,
                  seed=0, window_s=ref.seconds, pass_kill=True)
        assert r.mode == MODES[n - 1] and r.restarts >= 1
        assert r.problems == [], r.problems
        assert r.state["batches"] == ref.state["batches"]  # each input once


def test_replay_resends_after_a_lost_connection() -> None:
    """A submission that got no answer (the connection lost, or a 503) is sent again
    with backoff until the service answers; without ``retry_s`` the error stands."""
    seen: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(len(seen))
        if len(seen) == 1:
            raise httpx.ConnectError("refused", request=request)
        if len(seen) == 2:
            return httpx.Response(503)
        return httpx.Response(200, json={"batch_id": "b-1"})

    item = Item(at=None, source="firms", name="x.csv", body=b"a",  # type: ignore[arg-type]
                content_type="text/csv")
    waits: list[float] = []
    with httpx.Client(base_url="http://t", transport=httpx.MockTransport(answer)) as c:
        r, attempts = _post(c, item, 30.0, waits.append)
        assert r.status_code == 200 and attempts == 3 and waits == [0.2, 0.4]
        seen.clear()
        with pytest.raises(httpx.ConnectError):
            _post(c, item, 0.0, waits.append)
