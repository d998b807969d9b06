"""Benchmarks: the cost of every hop, side by side with in-process LangGraph and
LangGraph Server. `.venv/bin/python -m bench` runs them all (docs/benchmarks.md)."""
