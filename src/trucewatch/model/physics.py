"""Physical limits every stage agrees on (a parser refuses what physics forbids)."""

# physically possible apparent speeds (km/s); outside them an input is refused
MIN_SOUND_SPEED, MAX_SOUND_SPEED = 0.25, 0.45
MIN_SEISMIC_SPEED, MAX_SEISMIC_SPEED = 0.1, 14.0
