"""Reports: the daily verification bulletin (HTML, PDF) and its JSON/GeoJSON exports."""
