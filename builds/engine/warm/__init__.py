"""The warm engine: a process per store with the engine loaded, that the command line hands its
builds to (client.py), started on demand and ended when idle (server.py)."""
