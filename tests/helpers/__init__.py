"""Shared test helpers: deterministic file trees and a reference piece hasher.

Import as ``from tests.helpers import make_tree``.
"""

from tests.helpers.trees import TreeSpec, make_tree, random_spec, reference_pieces, tree_bytes

__all__ = ["TreeSpec", "make_tree", "random_spec", "reference_pieces", "tree_bytes"]
