"""Running pathways: the one step path (step.py) and what uses it.

Start, advance, the sweep, migrations and sharing are all steps in a batch.
"""
