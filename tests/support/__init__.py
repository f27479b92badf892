"""Test helpers shared across suites (loopback feed server, ...)."""
