"""The ground-sensor channel: propagation (travel times), association of detections into
explosions, their location, station health, and the located events as observations
(events)."""
