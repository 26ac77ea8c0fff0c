"""The top floor (ARCHITECTURE.md): the implementations the services are handed (networks, sqlite
storage, metrics, RPC) and the programs that run them (process runner, simulator, ideal driver,
cluster launcher, reports, CLI). The services themselves live in `relay/` and `collator/`."""

__version__ = "0.1.0"
