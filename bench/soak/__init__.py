"""Sustained load: the real app at a fixed request rate (Locust), its memory watched.

`run` (the command), `load` (Locust, in its own process), `memory` (RSS of the Serve
replicas), `stats` (the figures), `report` (the table), `plot` (the PNG).
"""
