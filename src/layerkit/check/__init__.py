"""Checks of a build: sizes and Lambda limits, ELF/glibc, imports, template, layers."""
