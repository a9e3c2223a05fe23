"""Batches: inputs, the plan, the concurrent runner, the results file and the statistics."""
