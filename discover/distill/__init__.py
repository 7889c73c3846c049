"""Distillation: a discovered drift as a short closed form that is valid by construction.

`discover distill DRIFT` (docs/design.md, Distillation): samples of (r, A, progress) where
the drift is used (`samples.py`), a library of valid atoms (`atoms.py`), greedy
non-negative sparse regression giving a size-vs-error Pareto front (`search.py`), the
formula as text, LaTeX and JAX (`formula.py`), and the whole pipeline (`pipeline.py`) under
its config (`config.py`).
"""
