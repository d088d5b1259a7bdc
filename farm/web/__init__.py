"""`farm serve`: a live, read-only web view of the sweeps in the store (Starlette under uvicorn)."""
