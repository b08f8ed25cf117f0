"""p2pshare.cli."""
