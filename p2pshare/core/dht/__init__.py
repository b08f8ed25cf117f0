"""p2pshare.core.dht."""
