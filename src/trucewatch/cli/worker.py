"""``trucewatch worker``: the processing worker on its own (``serve`` runs one inside)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from trucewatch.cli._common import err, out, parse_years


def worker(
    store: Annotated[str, typer.Option(help="store: a SQLite file or a postgresql:// URL")],
    agreement: Annotated[Path, typer.Option(help="agreement YAML")],
    baseline: Annotated[Path | None, typer.Option(
        help="the fitted baseline artifact (default: <store>.baseline.npz)")] = None,
    years: Annotated[str | None, typer.Option(
        help="reference years, e.g. 2023,2024 (default: the stored years before the "
             "entry-into-force year)")] = None,
    cloud: Annotated[Path | None, typer.Option(
        help="cloud record CSV (as `run --cloud`): what the satellites could see")] = None,
    once: Annotated[bool, typer.Option("--once", help="one pass, then stop")] = False,
    refit: Annotated[bool, typer.Option(
        "--refit", help="refit the baseline from the stored reference years (a new "
        "version), then pass")] = False,
    interval: Annotated[float, typer.Option(help="seconds between looks for new "
                                            "batches")] = 1.0,
) -> None:
    """Turn what the store received into incidents: classify, fuse, adjudicate, rule,
    from the stored watermark on (docs/pipeline.md, "The processing worker")."""
    import threading

    from trucewatch.pipeline.worker import PassResult, Worker, WorkerConfig

    w = Worker(WorkerConfig(store, agreement, baseline,
                            tuple(parse_years(years)) if years else None, cloud=cloud))
    if once or refit:
        r = w.run_pass(refit=refit)
        out.print(f"{'pass' if r.ran else 'no pass'}: {r.why}; watermark {r.watermark}"
                  + (f", baseline v{r.baseline_version}, {r.seconds:.1f} s" if r.ran else ""))
        if once:
            return

    def show(r: PassResult) -> None:
        if r.ran:
            out.print(f"pass: {r.why}; watermark {r.watermark}, baseline "
                      f"v{r.baseline_version}, {r.seconds:.1f} s")

    def failed(e: BaseException) -> None:
        line = e.one_line() if hasattr(e, "one_line") else repr(e)
        err.print(f"pass failed (retried): {line}", highlight=False)

    stop = threading.Event()
    try:
        w.run_forever(stop, interval, on_pass=show, on_error=failed)
    except KeyboardInterrupt:
        err.print("stopped")
