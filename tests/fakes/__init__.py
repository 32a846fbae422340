"""Faithful fakes of services we cannot reach from here, served on loopback."""
