"""Reporting: the table of every run, statistics across seeds and envs, Pareto fronts, plots, paper tables,
and the static site with its templates. Imports only `core`.
"""
