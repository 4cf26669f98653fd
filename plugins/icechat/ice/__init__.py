"""What ICE delivers: file names and completion, fetch, the raw store, PGP, packages, the parser."""
