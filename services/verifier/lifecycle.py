"""The one lifecycle of a verifier and of each of its followers: created, running, stopped."""

from __future__ import annotations

import enum


class Lifecycle(enum.Enum):
    """Started once, stopped once: ``start`` refuses anything but CREATED."""

    CREATED = "created"
    RUNNING = "running"
    STOPPED = "stopped"
