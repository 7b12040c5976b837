"""Fault injection and the chaos harness behind ``revocast chaos``."""
