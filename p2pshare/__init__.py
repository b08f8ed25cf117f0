"""p2pshare: peer-to-peer file sharing from the terminal, over real BitTorrent.

The manifest is a BitTorrent v1 info dict, its hash is the info hash, peers speak
the BEP 3 wire protocol with BEP 6/9/10, and peers are found on the Mainline DHT
(BEP 5): p2pshare interoperates with libtorrent, Transmission, aria2 and qBittorrent.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
