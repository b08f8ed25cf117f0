"""Shared test helpers: deterministic file trees and a reference piece hasher.

Import as ``from helpers import make_tree`` (pytest puts ``tests/`` on ``sys.path``
because ``tests/conftest.py`` lives there and ``tests/`` is not a package).
"""

from helpers.trees import TreeSpec, make_tree, random_spec, reference_pieces, tree_bytes

__all__ = ["TreeSpec", "make_tree", "random_spec", "reference_pieces", "tree_bytes"]
