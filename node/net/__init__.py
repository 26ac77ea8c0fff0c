"""Networking behind one interface: an in-memory network for simulations, TCP for processes."""
