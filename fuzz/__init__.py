"""Fuzzing at scale: every parser that reads bytes from a peer, a tracker or a file.

``python -m fuzz.run`` (``make fuzz``) drives each target with mutated inputs grown
from valid seeds; ``tests/fuzz/`` runs a short version of the same targets in CI.
"""
