"""Networks of real asyncback processes: the description (`spec`), and the launcher."""
