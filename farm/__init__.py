"""Loadfarm: sweeps of Locust load tests over a grid of stack configurations, stored and analysed."""

from __future__ import annotations

__version__ = "0.1.0"
