"""Every number of a comparison report from its raw final returns: per-env return tables, the
ratio to PPO per env and env group (PPO = 1 by construction), P(beats PPO) paired by seed,
tuned rows over a grid, all with paired, stratified bootstrap CIs (`report.paired`)."""

from __future__ import annotations

import warnings

import numpy as np

from discover.report import paired
from discover.theorem.text import json_number
from discover.training.references import MARGIN_SES

SCHEMA_VERSION = 2
WHOLE_GRID = "whole grid"
FAILED_SCORE = ("the lowest of the untrained policy's return and every finished run's on that env and grid point "
                "(so a crash never scores above a run that ended badly; PPO-normalised at most 0)")
METHOD = (
    "Every label trains with the same seed keys on every env and grid point, so its seeds are paired with "
    "PPO's. A failed (non-finite) run scores the lowest of the untrained policy's return and every finished "
    "run's on that env and grid point (normalised at most 0) and is counted in every statistic. Normalised "
    "score = (return - untrained policy's) / (PPO's mean over the env's runs - untrained policy's). The ratio "
    "to PPO is the IQM of a label's normalised scores pooled over the envs "
    "(and grid points) of a group divided by the IQM of PPO's over the same cells, so PPO's ratio is 1 by "
    "construction; an env where PPO's mean does not beat the untrained policy's by "
    f"{MARGIN_SES:g} standard errors is left out of every label's aggregates. 95 % CIs come from "
    f"{paired.RESAMPLES} paired, stratified bootstrap draws: seed indices resampled within each env, the "
    "same indices for every label and grid point, and the normaliser, the IQMs and their ratio recomputed "
    "in each draw (for tuned rows, within each half of the seeds). P(beats PPO) is the share of seeds whose "
    "run ends above PPO's run with the same seed (ties 1/2). A tuned row picks, per env, the grid point "
    "with the best IQM on the first half of the seeds "
    "and reports it on the second half, so the choice does not inflate the score. With fewer than "
    f"{paired.MIN_SEEDS_FOR_CI} seeds a number has no CI.")


def summarize(finals: np.ndarray, zero: np.ndarray, labels: list[str], envs: list[str], points: list[str],
              training: dict, seed: int, zero_se: np.ndarray | None = None) -> dict:
    """The report's numbers. `finals` (labels, envs, points, seeds): final returns, NaN for a
    failed run; `zero` (envs, points): the untrained policy's mean return, NaN if not measured;
    `zero_se` its standard error (for the normalisation margin); `training[label]`: the envs a
    drift was trained on, or None."""
    num_seeds = finals.shape[-1]
    failed = ~np.isfinite(finals)
    filled = filled_returns(finals, zero)
    results = {"schema_version": SCHEMA_VERSION, "method": METHOD, "failed_seed_score": FAILED_SCORE,
               "points": list(points), "untrained_return": _by_env_point(zero, envs, points),
               "untrained_standard_error": None if zero_se is None else _by_env_point(zero_se, envs, points),
               "failed_seeds": {label: {env: int(failed[i, j].sum()) for j, env in enumerate(envs)}
                                for i, label in enumerate(labels)},
               "ci_note": None if num_seeds >= paired.MIN_SEEDS_FOR_CI else (
                   f"{num_seeds} seeds per label and env: no confidence intervals (they need at least "
                   f"{paired.MIN_SEEDS_FOR_CI}; a bootstrap over fewer seeds understates the spread)")}
    ppo = labels.index("ppo") if "ppo" in labels else None
    excluded = _excluded_envs(filled, zero, zero_se, ppo, envs) if ppo is not None else {}
    kept = [i for i, env in enumerate(envs) if env not in excluded]
    groups = _env_groups(labels, envs, training, kept)
    point_sets = {name: [g] for g, name in enumerate(points)}
    if len(points) > 1:
        point_sets[WHOLE_GRID] = list(range(len(points)))
    tuned_rows = ppo is not None and len(points) > 1 and kept
    halves = (slice(0, num_seeds // 2), slice(num_seeds // 2, num_seeds))
    chosen = paired.choose_points(paired.normalise(filled, zero, ppo), halves[0]) if tuned_rows else None

    ci = _intervals(filled, zero, ppo, groups, point_sets, chosen, halves, seed)
    results["returns"] = _return_tables(ci, finals, failed, labels, envs, points, training)
    if ppo is None:
        return results
    results["excluded_envs"] = excluded
    results["normalised_iqm"] = {env: {p: {label: _interval(ci["normalised_iqm"], (i, j, g))
                                           for i, label in enumerate(labels)} for g, p in enumerate(points)}
                                 for j, env in enumerate(envs) if j in kept}
    results["probability_beats_ppo"] = {
        label: {env: {p: _interval(ci["beats"], (i, j, g)) if np.isfinite(filled[[i, ppo], j, g]).all() else None
                      for g, p in enumerate(points)} for j, env in enumerate(envs)}
        for i, label in enumerate(labels) if i != ppo}
    results["ratio_to_ppo"] = {group: {**members, "envs": [envs[j] for j in members["envs"]], "by_points": {
        name: {label: _interval(ci[f"ratio|{group}|{name}"], (i,)) for i, label in enumerate(labels)}
        for name in point_sets}} for group, members in groups.items()}
    if tuned_rows:
        results["tuned"] = {
            "choose_seeds": list(range(num_seeds))[halves[0]], "score_seeds": list(range(num_seeds))[halves[1]],
            "chosen": {label: {envs[j]: points[chosen[i, j]] for j in kept} for i, label in enumerate(labels)},
            "ratio_to_ppo_tuned": {group: {label: _interval(ci[f"tuned|{group}"], (i,))
                                         for i, label in enumerate(labels)} for group in groups}}
    return results


def shrinkage(finals: np.ndarray, zero: np.ndarray, labels: list[str], envs: list[str], training: dict,
              validation: dict) -> dict:
    """{label: {validation, fresh, ci, difference, envs, seeds}} for each drift with a sweep's
    validation score (`validation[label]`, from its drift file) whose training envs are all in
    the report: that score beside the same statistic here -- the mean over its training envs of
    the mean normalised score over this report's (fresh) seeds, at the first grid point -- with
    a 95 % normal interval over seeds. How much a chosen drift's score falls on new seeds."""
    if "ppo" not in labels:
        return {}
    ppo = labels.index("ppo")
    scores = paired.normalise(filled_returns(finals, zero), zero, ppo)[:, :, 0, :]  # (labels, envs, seeds) at the first point
    out = {}
    for i, label in enumerate(labels):
        record, trained = validation.get(label), training.get(label) or []
        if record is None or not trained or any(env not in envs for env in trained):
            continue
        per_seed = scores[i, [envs.index(env) for env in trained], :].mean(0)  # each seed's mean over the envs
        fresh = float(per_seed.mean())
        half_width = 1.96 * float(per_seed.std(ddof=1)) / np.sqrt(per_seed.size) if per_seed.size > 1 else None
        out[label] = {"validation": record["fitness"], "validation_seeds_per_env": record.get("seeds_per_env"),
                      "generation": record.get("generation"), "fresh": json_number(fresh),
                      "ci": None if half_width is None else [json_number(fresh - half_width),
                                                             json_number(fresh + half_width)],
                      "difference": json_number(fresh - record["fitness"]), "envs": list(trained),
                      "seeds": int(per_seed.size)}
    return out


def _intervals(filled, zero, ppo, groups: dict, point_sets: dict, chosen, halves, seed: int) -> dict:
    """{statistic name: paired.interval} of every statistic of the report: return statistics per
    cell, and with PPO the normalised IQMs, P(beats PPO), the ratios and (with `chosen`) the tuned rows."""
    num_seeds = filled.shape[-1]

    def statistic(returns: np.ndarray) -> dict:
        out = {"mean": returns.mean(-1), "median": np.median(returns, -1), "iqm": paired.iqm(returns)}
        if ppo is None:
            return out
        scores = paired.normalise(returns, zero, ppo)
        out["normalised_iqm"] = paired.iqm(scores)
        out["beats"] = paired.beats(returns, returns[..., ppo:ppo + 1, :, :, :])
        for group, members in groups.items():
            for name, cells in point_sets.items():
                out[f"ratio|{group}|{name}"] = paired.ratio_to_ppo(scores, members["envs"], cells, ppo)
        return out

    def tuned_statistic(returns: np.ndarray) -> dict:
        scores = paired.tuned(paired.normalise(returns, zero, ppo), chosen, halves[1])
        return {f"tuned|{group}": paired.ratio_to_ppo(scores, members["envs"], [0], ppo)
                for group, members in groups.items()}

    rng = np.random.default_rng(seed)
    point, draws = paired.bootstrap(statistic, filled, rng, halves=False)
    if chosen is not None:  # resampled within each half, so the scoring seeds stay apart from the choosing ones
        tuned_point, tuned_draws = paired.bootstrap(tuned_statistic, filled, rng, halves=True)
        point, draws = {**point, **tuned_point}, {**draws, **tuned_draws}
    score_seeds = num_seeds - num_seeds // 2  # a tuned row's, the second half
    return {name: paired.interval(point[name], draws[name], score_seeds if name.startswith("tuned|") else num_seeds)
            for name in point}


def filled_returns(finals: np.ndarray, zero: np.ndarray) -> np.ndarray:
    """`finals` with every failed (non-finite) run scored as FAILED_SCORE says."""
    return np.where(np.isfinite(finals), finals, failed_scores(finals, zero)[None, :, :, None])


def failed_scores(finals: np.ndarray, zero: np.ndarray) -> np.ndarray:
    """(envs, points): a failed run's score, the lowest of the untrained return and every finished
    run's there (NaN where neither exists)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a cell where no run finished
        lowest = np.nanmin(np.where(np.isfinite(finals), finals, np.nan), axis=(0, 3))
    return np.fmin(zero, lowest)


def _excluded_envs(filled, zero, zero_se, ppo: int, envs: list[str]) -> dict:
    """{env: why} for envs without a zero and one point: the untrained return not measured, or
    PPO's mean not above it by MARGIN_SES standard errors of the difference (never a flipped sign)."""
    excluded = {}
    for j, env in enumerate(envs):
        if not np.isfinite(zero[j]).all():
            excluded[env] = "the untrained policy's return was not measured (no untrained seed ended an episode)"
            continue
        if np.all(filled[ppo, j] <= zero[j][:, None]):
            excluded[env] = "no PPO run ended above the untrained policy's return (failed runs included)"
            continue
        advance = (filled[ppo, j] - zero[j][:, None]).ravel()
        spread = advance.var(ddof=1) / advance.size if advance.size > 1 else np.inf
        untrained = np.mean(np.square(zero_se[j])) if zero_se is not None and np.isfinite(zero_se[j]).all() else 0.0
        margin = MARGIN_SES * float(np.sqrt(spread + untrained))
        if not advance.mean() > margin:
            excluded[env] = (f"PPO's mean return is {advance.mean():.4g} above the untrained policy's, not more than "
                             f"the margin of {margin:.3g} ({MARGIN_SES:g} standard errors)")
    return excluded


def _env_groups(labels: list[str], envs: list[str], training: dict, kept: list[int]) -> dict:
    """{name: {kind, envs}}: all normalisable envs, each drift's training and held-out envs (drifts
    with the same envs share a group), then every env alone; every label is scored on each."""
    groups = {"all envs": {"kind": "all", "envs": kept}} if kept else {}
    owners: dict[tuple, list[str]] = {}
    for label in labels:
        if training[label] is None:
            continue
        for kind, members in (("training", [j for j in kept if envs[j] in training[label]]),
                              ("held-out", [j for j in kept if envs[j] not in training[label]])):
            if members:
                owners.setdefault((kind, tuple(members)), []).append(label)
    for (kind, members), names in owners.items():
        groups[f"{kind} envs of {', '.join(names)}"] = {"kind": kind, "envs": list(members)}
    for j in kept:
        groups[envs[j]] = {"kind": "env", "envs": [j]}
    return groups


def _interval(ci: dict, index: tuple) -> dict:
    """{value, ci} of one element (null where undefined), and the share of undefined draws if any."""
    out = {"value": json_number(ci["value"][index]), "ci": [json_number(ci["lo"][index]), json_number(ci["hi"][index])]}
    if ci["undefined_draws"][index] > 0:
        out["undefined_draws"] = float(ci["undefined_draws"][index])
    return out


def _by_env_point(values: np.ndarray, envs: list[str], points: list[str]) -> dict:
    return {env: {p: json_number(values[j, g]) for g, p in enumerate(points)} for j, env in enumerate(envs)}


def _return_tables(ci: dict, finals, failed, labels, envs, points, training) -> dict:
    """{env: {point: {label: row}}}: the final returns per seed as trained (failed: null), and
    mean, median and IQM with failed seeds scored as the untrained policy (null if unmeasured)."""
    tables = {}
    for j, env in enumerate(envs):
        tables[env] = {}
        for g, p in enumerate(points):
            tables[env][p] = {}
            for i, label in enumerate(labels):
                row = {"final_returns": [json_number(v) for v in finals[i, j, g]],
                       "failed_seeds": int(failed[i, j, g].sum()),
                       "held_out": training[label] is not None and env not in training[label]}
                for name in ("mean", "median", "iqm"):
                    cell = _interval(ci[name], (i, j, g))
                    row[name], row[f"{name}_ci"] = cell["value"], cell["ci"]
                tables[env][p][label] = row
    return tables
