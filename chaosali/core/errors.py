"""Errors shared by every chaosali domain."""

from chaoslib.exceptions import ActivityFailed

__all__ = ["InvalidArgument", "EndpointError"]


class InvalidArgument(ActivityFailed):
    """An argument refused before anything reaches a host or a cluster; the message names the fix."""


class EndpointError(Exception):
    """A failure on one endpoint of a fan-out (an SSH host, an HTTP member), worded for the person
    running the drill; the fan-out collects it per endpoint instead of failing the others."""
