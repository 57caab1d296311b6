"""Judging the runs: curves over remaining weights, the control curve and verdicts, the statistics, and the
tables and the summary they are written to."""
