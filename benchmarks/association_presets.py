"""The project's own sensor presets, the cascade (joint=None) against the joint stage.

    PYTHONPATH=src .venv/bin/python benchmarks/association_presets.py \
        clean:6,quiet:24,moderate_calm:6,moderate:12,barrage:3 preset
    PYTHONPATH=src .venv/bin/python benchmarks/association_presets.py moderate:6,barrage:1 1,2,3,4,5

Arguments: preset:hours list, then seeds ("preset" keeps the preset's own seed).
Both methods run in this process, one after the other, on the same generated
scenario; one JSON line per run (F1 with the 60 %-shared-detections rule, and the
wall time of associate()).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace

from lab.scoring import score
from trucewatch.demo.sensors import PRESETS, generate
from trucewatch.sensors.association import ExplosionAssociator, Network, Picks
from trucewatch.sensors.joint import JointRefiner


def main(specs: str, seeds: str) -> None:
    for spec in specs.split(","):
        name, hours = spec.split(":")
        for seed in seeds.split(","):
            sc = replace(PRESETS[name], duration_h=float(hours))
            if seed != "preset":
                sc = replace(sc, seed=int(seed))
            d = generate(sc)
            net = Network.from_table(d.stations)
            pk = Picks.from_table(d.detections, net)
            for label, joint in (("cascade", None), ("joint", JointRefiner()),
                                 ("joint-far", JointRefiner(em_distance_cap=False))):
                a = ExplosionAssociator(propagation=sc.propagation(), joint=joint)
                t = time.perf_counter()
                res = a.associate(net, pk)
                wall = time.perf_counter() - t
                s = score(d.truth, d.detections.select("detection_id", "station"),
                          res.assignments)
                print(json.dumps({"preset": name, "hours": float(hours), "seed": seed,
                                  "method": label, **s.row(), "wall_s": round(wall, 2)}),
                      flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "preset")
