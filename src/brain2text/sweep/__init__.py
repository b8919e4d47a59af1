"""Families of runs: a grid (:mod:`~brain2text.sweep.grid`) or an Optuna search
(:mod:`~brain2text.sweep.search`) of child runs of one run file, in this process or in K
(:mod:`~brain2text.sweep.processes`)."""
