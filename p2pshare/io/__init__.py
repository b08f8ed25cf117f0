"""p2pshare.io."""
