"""Process plumbing: transports, services, CLI."""

__version__ = "0.1.0"
