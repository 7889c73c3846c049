"""The theorem check: exact tabular verification of the mirror-learning theorem for any drift.

Owns the check that a per-sample drift `d(r, A, progress)` is one mirror learning can use
(docs/design.md section 1; Kuba, Schroeder de Witt, Foerster 2022, "Mirror Learning: A Unifying
Framework of Policy Optimisation", Theorem 3.6): `config` (what is checked), `axioms`
(`check_axioms`), `mdp` (exact finite MDPs), `mirror` (the exact mirror update) and `verdict`
(`verify_drift`); `discover verify` is its command. Two kinds of evidence:

1. **Axioms**, numerically, on a dense grid plus random points of the domain training
   reaches (log-ratios -20..20, the trainer's clip; advantages +-1e6 down to 1e-8 and 0;
   progress 0..1): `d >= 0` and `d(1, A) = 0` exactly, zero slope at `r = 1` by one-sided
   difference quotients in float64 on each side (a kink at `r = 1` that `relu'(0) = 0`
   hides from autodiff is caught there), and finite values and gradients.
2. **The theorem itself**, exactly, on a batch of random finite MDPs (vmapped, jitted; the
   MDP machinery in float64, the drift in float32 as in training unless `drift_dtype` says
   otherwise): starting from the uniform policy, each mirror-learning update maximises,
   state by state, `E_{a~pi}[A_old(s,a)] - E_{a~pi_old}[d(pi/pi_old, A_old(s,a), n/N)]`
   over softmax policies (optionally inside a per-state KL ball) by exponentiated-gradient
   ascent from `pi_old`, plus `inner_restarts` ascents from random logits (the theorem's
   update is the global argmax, which a local ascent from `pi_old` alone can miss). Policies are evaluated exactly
   by a linear solve. We check monotonic improvement `eta(pi_{n+1}) >= eta(pi_n)` at every
   update of every MDP, and report the gap to the optimum (value iteration) and how fast it
   closes. The theorem's convergence claim is asymptotic, so the gap is reported, not
   checked, unless `max_final_gap` is set.

Why the exact check is meaningful: by the performance-difference lemma,
`V_new(s) - V_old(s)` is a discounted sum over states of `E_{a~pi_new}[A_old(s, a)]`. The
inner optimiser keeps the best iterate per state, and the first is `pi_old`, where the
objective is `-E_old[d(1, A)]` (0 for a valid drift), so the new policy's objective is
never below it; with `d >= 0` that makes every `E_{pi_new}[A_old(s, .)] >= 0`, hence
`V_new >= V_old` everywhere. A drift that is negative somewhere loses that guarantee, which
the MDP batch can expose.

Advantages fed to the drift and the objective (`advantage_scaling`): "std" (default)
divides `A_old` by (its standard deviation under `pi_old`, states weighted equally, + 1e-8),
in both terms, as the trainer's per-minibatch normalisation does -- learned drifts were trained on
normalised advantages, so that is the input range they know. The objective is then
`(1/sigma) (E_pi[A] - sigma E_old[d(r, A/sigma)])`: the argmax of mirror learning with the
(equally valid) drift `sigma d(r, A/sigma)`. "raw" feeds `A_old` unchanged.
"""
