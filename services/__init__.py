"""Provincial CME management suite: four independent services and their common package."""
