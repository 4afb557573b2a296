"""Reports of a build: data, terminal tables, the self-contained HTML page."""
