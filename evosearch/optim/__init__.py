"""Programs on torch: ``compiled`` steps (the interpreter, and straight-line Python for the common
case), ``ProgramOptimizer`` and its flat-buffer variant, ``to_optimizer`` (``factory``), the
constants that become constructor arguments (``hyperparams``), and ``export`` to a standalone
module. Above ``lang`` and ``symbolic`` (an export's docstring shows the program's math)."""
