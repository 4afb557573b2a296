"""Optimize: trace what functions load, advise, and prune with proof (see apply.optimize)."""
