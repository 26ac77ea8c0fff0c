"""Node networking plumbing: transport interface, in-memory network, peer set, gossip, req/resp."""
