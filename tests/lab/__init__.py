"""The NAT lab: network namespaces, veths, nftables NAT and miniupnpd, built by the tests themselves."""
