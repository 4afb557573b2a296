"""Lambda targets: runtimes, glibc, interpreters, and the docker-free Lambda sandbox."""
