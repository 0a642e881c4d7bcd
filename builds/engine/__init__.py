"""The layer engine: parse a Dockerfile, decide every step's cache verdict, run the misses.

Plain Python with no Django import, so it can be tested and benchmarked on its own.
Phases import one way: dockerfile -> instructions -> cachekey -> builder, with context,
store and sandbox as the builder's tools.
"""
