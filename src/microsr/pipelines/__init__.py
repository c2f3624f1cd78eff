"""Pipelines: stages assembled into the jobs a user runs (files in, files out)."""
