"""The satellite channel: the expected-fire baseline per cell and season (baseline, covariates,
landscape) and the classifier that tells war-related fires from harvest, wildfire and industry
(war_fires)."""
