"""SAE features: statistics over a corpus, explanations, dashboards and the report's feature section."""
