"""Load generation: the LoadRunner port, Locust as a subprocess, and parsing of its statistics."""
