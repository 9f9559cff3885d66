"""Evaluation: the protocol (crops, depth bounds, scaling), the metrics, the test-time loop shared by
test.py and train.py's validation, and the result files (the release's evalog.txt, metrics.json)."""
