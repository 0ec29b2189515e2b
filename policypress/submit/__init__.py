"""Submitting a method: the plugin scaffold and the conformance suite. Imports `core` and `teachers`.
"""
