"""`make bench`: the load benchmark of DESIGN §4.7 (real processes on loopback) → var/bench/result.json."""
