"""``trucewatch replay SCENARIO_DIR --url URL --token TOKEN [--speed X]``."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from trucewatch.cli._common import err, out


def replay(
    scenario_dir: Annotated[Path, typer.Argument(help="scenario folder (`trucewatch run "
                                                 "--out DIR` leaves the built-in one in "
                                                 "DIR/scenario)")],
    url: Annotated[str, typer.Option(help="the service, e.g. http://127.0.0.1:8000")],
    token: Annotated[str, typer.Option(help="an admin's or analyst's API token",
                                       envvar="TRUCEWATCH_TOKEN")],
    speed: Annotated[float, typer.Option(help="0: as fast as the service answers; X > 0: "
                                         "X seconds of scenario time per second")] = 0.0,
    retry: Annotated[float, typer.Option(help="seconds to keep resending a submission "
                                         "while the service is unreachable (0: stop at "
                                         "once); resent inputs are stored once")] = 0.0,
) -> None:
    """Feed a scenario's inputs to a running service through its API, in time order."""
    from trucewatch.replay import Sent
    from trucewatch.replay import replay as run_replay

    def show(s: Sent) -> None:
        if not s.accepted:
            err.print(f"  {s.item.at:%Y-%m-%d %H:%M}Z {s.item.name}: refused "
                      f"({s.status}): {str(s.answer.get('message', ''))[:160]}",
                      highlight=False)

    result = run_replay(scenario_dir, url, token, speed, on_sent=show, retry_s=retry)
    kinds = Counter(s.item.source for s in result.sent)
    out.print(f"{len(result.sent)} submission(s) sent in "
              f"{result.finished - result.started:.1f} s ("
              + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
              + f"): {result.accepted} accepted, {len(result.refused)} refused"
              + (f", {result.resent} resent" if result.resent else ""))
