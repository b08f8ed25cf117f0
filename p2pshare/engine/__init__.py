"""p2pshare.engine."""
