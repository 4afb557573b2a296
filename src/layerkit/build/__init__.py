"""The build: lock and partition, install, slim, bytecode, archive, manifest, freshness."""
