"""Benchmarks for pathways (issue 8): `./dev bench` or `python -m bench`.

Every figure is printed next to a baseline measured in the same run on the same machine
(a database's own floor, a bare interpreter, a peer engine), because absolute times on shared
machines are noisy and ratios are not. Not part of the test suite: no timing ever gates a test.
"""
