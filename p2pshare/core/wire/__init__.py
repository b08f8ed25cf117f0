"""p2pshare.core.wire."""
