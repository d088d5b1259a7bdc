"""Rendering of a sweep's results: a self-contained HTML report and figures."""
