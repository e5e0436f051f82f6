"""Scoring an association against ground truth, the way PyOcto's benchmark does.

A predicted event matches a true one when they share at least ``overlap`` (60 %)
of the larger of their two detection sets; with that rule a true event matches
at most one prediction. Recall counts the true events that are detectable: with
detections from at least ``min_stations`` stations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl


@dataclass
class Score:
    n_true: int
    n_pred: int
    matched: int
    precision: float
    recall: float
    f1: float
    pairs: pl.DataFrame  # true_id, pred_id of every match

    def row(self) -> dict[str, float | int]:
        return {"true": self.n_true, "pred": self.n_pred, "matched": self.matched,
                "precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "f1": round(self.f1, 4)}


def score(truth: pl.DataFrame, stations_of: pl.DataFrame, pred: pl.DataFrame,
          *, min_stations: int = 4, overlap: float = 0.6) -> Score:
    """``truth`` and ``pred``: detection_id, event_id (null = unassociated).
    ``stations_of``: detection_id, station (to tell which true events are detectable)."""
    t = truth.drop_nulls("event_id").rename({"event_id": "true_id"})
    p = pred.drop_nulls("event_id").select("detection_id", pl.col("event_id").alias("pred_id"))
    t_size = t.group_by("true_id").len("n_true")
    p_size = p.group_by("pred_id").len("n_pred")
    detectable = (t.join(stations_of, on="detection_id").group_by("true_id")
                  .agg(pl.col("station").n_unique().alias("n_sta"))
                  .filter(pl.col("n_sta") >= min_stations))
    shared = (t.join(p, on="detection_id").group_by("true_id", "pred_id").len("shared")
              .join(t_size, on="true_id").join(p_size, on="pred_id")
              .filter(pl.col("shared") >= overlap * pl.max_horizontal("n_true", "n_pred")))
    # a prediction matching an undetectable true event is still right (not a false event)
    n_pred = p_size.height
    tp_pred = shared["pred_id"].n_unique()
    n_true = detectable.height
    tp_true = shared.join(detectable, on="true_id")["true_id"].n_unique()
    precision = tp_pred / n_pred if n_pred else 1.0
    recall = tp_true / n_true if n_true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Score(n_true, n_pred, tp_true, precision, recall, f1,
                 shared.select("true_id", "pred_id"))


def location_errors_km(pairs: pl.DataFrame, true_events: pl.DataFrame,
                       pred_events: pl.DataFrame) -> np.ndarray:
    """Horizontal distance (km) between matched predicted and true events; both frames
    have event_id, x_km, y_km in the same local frame."""
    j = (pairs.join(true_events.select(pl.col("event_id").alias("true_id"), "x_km", "y_km"),
                    on="true_id")
         .join(pred_events.select(pl.col("event_id").alias("pred_id"),
                                  pl.col("x_km").alias("px"), pl.col("y_km").alias("py")),
               on="pred_id"))
    return np.asarray(np.hypot(j["x_km"].to_numpy() - j["px"].to_numpy(),
                               j["y_km"].to_numpy() - j["py"].to_numpy()), dtype=np.float64)


def score_violations(evaluated: pl.DataFrame, evidence: pl.DataFrame,
                     events: pl.DataFrame, established: set[str] | None = None
                     ) -> dict[str, float]:
    """Candidate violations (incidents with a rule) against the true violation events.

    A candidate is a true positive when most of its observations come from one true
    event that breaks a rule, and no earlier candidate claimed that event (so a
    violation reported twice counts once right, once wrong). Recall is given over the
    violations the data can establish (``established``: seen by the network or a drone,
    or a fire cluster), over those any source observed (a stray fire pixel included),
    and over all of them. ``rule_correct``: true positives that name the true rule.
    """
    owner = dict(zip(evidence["id"].to_list(), evidence["truth_event"].to_list(),
                     strict=True))
    rule_of = dict(zip(events["event"].to_list(), events["rule"].to_list(), strict=True))
    violations = {e for e, r in rule_of.items() if r is not None}
    observed = set(evidence["truth_event"].drop_nulls().to_list()) & violations
    cands = evaluated.filter(pl.col("rule").is_not_null())
    claimed: set[str] = set()
    tp = rule_ok = 0
    for ids, rule in zip(cands["observation_ids"].to_list(), cands["rule"].to_list(),
                         strict=True):
        owners = [owner.get(i) for i in ids]
        real = [o for o in owners if o is not None]
        if not real:
            continue
        best = max(set(real), key=real.count)
        if real.count(best) * 2 < len(owners) or best not in violations or best in claimed:
            continue
        claimed.add(best)
        tp += 1
        rule_ok += rule == rule_of[best]
    n = cands.height
    p = tp / n if n else 1.0
    est = (established or observed) & violations
    r_est = len(claimed & est) / len(est) if est else 1.0
    r_obs = tp / len(observed) if observed else 1.0
    return {"candidates": n, "tp": tp, "precision": p, "recall_established": r_est,
            "recall_observed": r_obs, "established_violations": len(est),
            "recall_all": tp / len(violations) if violations else 1.0,
            "f1": 2 * p * r_est / (p + r_est) if p + r_est else 0.0,
            "rule_correct": rule_ok / tp if tp else 1.0,
            "violations": len(violations), "observed_violations": len(observed)}
