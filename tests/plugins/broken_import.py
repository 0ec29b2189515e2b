"""Test plugin: fails when imported."""

raise ImportError("this plugin cannot be imported")
