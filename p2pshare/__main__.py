"""``python -m p2pshare``."""

from p2pshare.cli.app import main

main()
