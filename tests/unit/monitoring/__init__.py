"""Tests of the metrics and status of runs."""
