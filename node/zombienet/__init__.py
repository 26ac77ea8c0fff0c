"""Zombienet's test files read by asyncback: network files (TOML) and `.zndsl` tests."""
