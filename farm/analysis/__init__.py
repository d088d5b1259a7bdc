"""Analysis: pure functions from stored cells to data frames, surfaces and crossovers (no database, no Celery)."""
