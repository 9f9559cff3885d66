"""Speed, memory and scaling benchmarks: `python benchmarks/run.py` writes docs/performance.md."""
