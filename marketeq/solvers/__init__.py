"""Equilibrium solvers behind one interface; ``SOLVERS`` maps a scenario's ``solver.method`` to a class."""
