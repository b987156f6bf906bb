"""The tiny application every benchmarked server serves (one file per API)."""
