"""The contract every run shares: the policy format, the parameter count that defines a level, env specs and
configs, the method registry, the budget and the task a method receives, and the harness that enforces them.
Imports nothing else of PolicyPress.
"""
