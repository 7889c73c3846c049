"""Every number of a comparison report from its raw runs: per-env statistics with bootstrap
CIs, the probability of beating PPO, and PPO-normalised aggregates (Agarwal et al. 2021)."""

from __future__ import annotations

import numpy as np

from discover.report import stats
from discover.theorem.text import json_number

RESAMPLES = 2000


def summarize(runs: dict, labels: list[str], envs: list[str], training: dict, seed: int,
              untrained: dict | None = None) -> dict:
    """Every number of the report from raw runs {(label, env): {"final_return", "curve"}}.

    PPO-normalised score = (return - untrained) / (PPO mean - untrained), where `untrained`
    is the env's return of the initial (untrained) policy: 0 = no learning, 1 = PPO. A plain
    ratio to PPO would flip sign on envs with negative returns (Acrobot). An env whose
    untrained return is None (not measured: every untrained seed gave NaN) or whose PPO runs
    all failed has no zero or one point, so it is left out of the aggregate and named in
    `aggregate_excluded_envs` with the reason.
    """
    untrained = untrained or {env: 0.0 for env in envs}
    results = {"per_env": {}, "aggregate": {}, "probability_beats_ppo": {}, "untrained_return": dict(untrained),
               "aggregate_excluded_envs": {}}
    for env in envs:
        results["per_env"][env] = {}
        for label in labels:
            final = np.asarray(runs[(label, env)]["final_return"], np.float64)
            ok = final[np.isfinite(final)]
            row = {"final_returns": [json_number(v) for v in final],
                   "failed_seeds": int((~np.isfinite(final)).sum()),
                   "held_out": training[label] is not None and env not in training[label]}
            for name in stats.STATISTICS:
                fn = stats.statistic(name)
                row[name] = fn(ok) if ok.size else None
                lo, hi = stats.bootstrap_ci(ok, fn, resamples=RESAMPLES, seed=seed) if ok.size else (None, None)
                row[f"{name}_ci"] = [lo, hi]
            results["per_env"][env][label] = row
    if "ppo" in labels:
        results["probability_beats_ppo"] = {label: _probability_beats_ppo(runs, label, envs, seed)
                                            for label in labels if label != "ppo"}
        spans = {}
        for env in envs:
            ppo_mean = results["per_env"][env]["ppo"]["mean"]
            if untrained[env] is None:
                results["aggregate_excluded_envs"][env] = "untrained return not measured"
            elif ppo_mean is None:
                results["aggregate_excluded_envs"][env] = "every PPO seed failed"
            elif ppo_mean == untrained[env]:
                results["aggregate_excluded_envs"][env] = "PPO's mean equals the untrained return"
            else:
                spans[env] = ppo_mean - untrained[env]
        results["aggregate"] = _aggregates(runs, labels, spans, untrained, seed)
        results["aggregate_groups"] = _group_aggregates(runs, labels, envs, training, spans, untrained, seed)
    return results


def _probability_beats_ppo(runs: dict, label: str, envs: list[str], seed: int) -> dict:
    """{env: {p, ci}}: P(a run of `label` ends above a PPO run), failed seeds left out."""
    out = {}
    for env in envs:
        x = np.asarray(runs[(label, env)]["final_return"], np.float64)
        y = np.asarray(runs[("ppo", env)]["final_return"], np.float64)
        x, y = x[np.isfinite(x)], y[np.isfinite(y)]
        p = stats.probability_of_improvement(x, y) if x.size and y.size else None
        ci = stats.probability_of_improvement_ci(x, y, resamples=RESAMPLES, seed=seed) if p is not None \
            else (None, None)
        out[env] = {"p": p, "ci": list(ci)}
    return out


def _group_aggregates(runs: dict, labels: list[str], envs: list[str], training: dict, spans: dict,
                      untrained: dict, seed: int) -> dict:
    """The aggregate over each drift's training envs and over its held-out envs alone (every
    drift scored on the same env group), so transfer is read directly."""
    groups: dict[tuple, dict] = {}
    for label in labels:
        if training[label] is None:
            continue
        for kind, group in (("training", [e for e in envs if e in training[label]]),
                            ("held out", [e for e in envs if e not in training[label]])):
            group = tuple(e for e in group if e in spans)
            if group:
                groups.setdefault(group, {}).setdefault(kind, []).append(label)
    return {"; ".join(f"{kind} by {', '.join(owners)}" for kind, owners in kinds.items()): {
                "envs": list(group), "by_drift": _aggregates(runs, labels, {e: spans[e] for e in group}, untrained, seed)}
            for group, kinds in groups.items()}


def _aggregates(runs: dict, labels: list[str], spans: dict, untrained: dict, seed: int) -> dict:
    """{label: {mean, iqm, and their CIs}} of PPO-normalised scores pooled over `spans`' envs."""
    out = {}
    for label in labels:
        strata = []
        for env, span in spans.items():
            x = np.asarray(runs[(label, env)]["final_return"], np.float64)
            strata.append((x[np.isfinite(x)] - untrained[env]) / span)
        pooled = np.concatenate(strata) if strata else np.zeros(0)
        agg = {}
        for name in ("mean", "iqm"):
            fn = stats.statistic(name)
            agg[name] = fn(pooled) if pooled.size else None
            agg[f"{name}_ci"] = list(stats.stratified_bootstrap_ci(strata, fn, resamples=RESAMPLES, seed=seed)) \
                if pooled.size else [None, None]
        out[label] = agg
    return out
