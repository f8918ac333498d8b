"""What a program computes, symbolically: sympy ``forms`` of a program, ``algebra`` on them,
``rebuild`` of a program from expressions, numerical ``verify``-cation of equivalence, ``exact``
simplification (``simplify``), approximate simplification by ``ablate``-ion, and family ``match``-ing
(is it Lion, Signum, SGD with momentum, Adam?). Above ``lang``; nothing here runs torch."""
