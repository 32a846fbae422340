"""Domain services: one function per operation, called by REST, socket.io and MCP alike.

A service takes a ``Principal`` and typed arguments, checks access (another organization's
object is ``NotFound``), writes, and returns models. It never sees a request or a socket.
"""
