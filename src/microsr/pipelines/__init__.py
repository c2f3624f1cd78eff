"""Inference: the facades of every method (SIM, SFSRM, rDL SIM, self-supervised) and the jobs a user runs on files.

Built on :mod:`microsr.models`; never imports :mod:`microsr.train`, so prediction never loads Lightning.
"""
