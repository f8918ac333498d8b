"""The families ``match`` knows, by name (a module of its own, so that the command line can offer
them without loading sympy)."""

FAMILIES = ("lion", "signum", "sgd-momentum", "adam")
