"""Errors shared by every chaosali domain."""

from chaoslib.exceptions import ActivityFailed

__all__ = ["InvalidArgument"]


class InvalidArgument(ActivityFailed):
    """An argument refused before anything reaches a host or a cluster; the message names the fix."""
