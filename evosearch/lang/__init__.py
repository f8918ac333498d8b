"""The program language: the IR (``ir``, ``program``), the parser, static analysis (abstract
execution in ``kinds``, ``liveness``, ``canonical`` forms), functional ``fingerprint``s on the
primitives' numpy forms, and the shipped ``reference`` programs. The lowest layer of the engine:
it imports only ``primitives``."""
