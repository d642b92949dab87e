"""Static HTML dashboards for SAE features: an index of latents, a page per latent and per clip, opened from disk.

Typical use::

    from otoscope.features.dashboard import DashboardConfig, build_dashboard

    result = build_dashboard("features/", "dash/", DashboardConfig(max_latents=500))
    print(result.index)    # open dash/index.html in a browser (file://, offline)
"""

from otoscope.features.dashboard.build import DashboardResult, build_dashboard
from otoscope.features.dashboard.config import DashboardConfig
from otoscope.features.dashboard.data import FeaturesFile, read_features

__all__ = ["DashboardConfig", "DashboardResult", "FeaturesFile", "build_dashboard", "read_features"]
