"""Hook points, hook installation and the activation cache."""

from otoscope.hooks.cache import ActivationCache
from otoscope.hooks.points import HookPoint, Site, build_hook_points
from otoscope.hooks.select import select

__all__ = ["ActivationCache", "HookPoint", "Site", "build_hook_points", "select"]
