"""Tuning a program's learning rate and constants: the pure search ``space`` and the tuned program,
and population-based training on Ray Tune (``pbt``). Above ``search`` (it shares its Ray start-up)."""
