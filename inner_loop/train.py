"""One mirror-learning run, end-to-end jitted: `make_train(config, drift)`.

Each update (purejaxrl's structure, nested `lax.scan`): roll out `num_envs` gymnax envs
for `num_steps`, evaluate the critic on the batch (and on the pre-reset final observations
of truncated episodes, to bootstrap them), compute GAE, then improve the policy with the
mirror-learning objective

    maximise  E_{s,a ~ pi_old}[ r A - d(r, A, progress) ]   over pi in N(pi_old)

(Kuba et al. 2022), with `r = pi/pi_old`, `A` the normalised advantage and `progress =
update / num_updates`. For the neighbourhood "none" this is `update_epochs` passes of
shuffled minibatch Adam on `-mean(r A - d) + vf_coef * value_loss - ent_coef * entropy`;
for "kl_ball" it is the natural-gradient step of `neighbourhoods.kl_ball_step` followed by
the same minibatch passes on the value loss alone.

Metrics are reduced inside the scans (sums of finished-episode returns and counts, mean
losses per update), so memory does not grow with the number of env steps.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import flax.struct
import jax
import jax.numpy as jnp
import optax

from inner_loop import networks
from inner_loop.config import Hyperparams, TrainConfig
from inner_loop.drifts import LOG_RATIO_CLIP, Drift
from inner_loop.envs import EnvSpec, RunningMeanStd, flatten_obs, make_env
from inner_loop.gae import compute_gae
from inner_loop.neighbourhoods import kl_ball_step
from inner_loop.permutation import random_permutation


@flax.struct.dataclass
class RunnerState:
    """Everything carried from one update to the next."""

    params: Any
    opt_state: Any
    env_state: Any
    obs: jax.Array  # (num_envs, obs_dim), raw flattened observations
    obs_stats: RunningMeanStd
    return_stats: RunningMeanStd  # running variance of the discounted return
    discounted_return: jax.Array  # (num_envs,), for reward normalisation
    episode_return: jax.Array  # (num_envs,), undiscounted return of the running episodes
    key: jax.Array
    update: jax.Array  # index of the next update


class Transition(NamedTuple):
    obs: jax.Array  # observation fed to the policy (normalised if enabled)
    action: jax.Array
    log_prob: jax.Array
    reward: jax.Array  # (possibly normalised) reward used for learning
    terminated: jax.Array
    done: jax.Array
    final_obs: jax.Array  # observation reached before any auto-reset (normalised like obs)


class _EnvCarry(NamedTuple):
    """What changes from one env step to the next inside a rollout."""

    env_state: Any
    obs: jax.Array
    obs_stats: RunningMeanStd
    return_stats: RunningMeanStd
    discounted_return: jax.Array
    episode_return: jax.Array
    return_sum: jax.Array  # sum of returns of episodes finished in this rollout
    episode_count: jax.Array  # number of episodes finished in this rollout


class Batch(NamedTuple):
    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    advantage: jax.Array
    target: jax.Array


class DriftInputs(NamedTuple):
    """The (ratio, advantage) the drift was evaluated at in a policy step."""

    ratio: jax.Array
    advantage: jax.Array


class Trainer:
    """`make_train(config, drift)`'s result: `trainer(key, drift_params[, hparams])`.

    Pure and jittable; vmap it over keys (seeds), drift params (a population) and
    hyperparameters (variants) in any combination. `init`, `empty_record`, `run_updates` and
    `summarize` are the same computation in stages, for callers that show progress between chunks.
    """

    def __init__(self, config: TrainConfig, drift: Drift, env_spec: EnvSpec | None = None):
        self.config = config.validate()
        self.drift = drift
        self.spec = env_spec or make_env(config.env_id)
        self.net = networks.ActorCritic.create(self.spec.action_dim, self.spec.discrete,
                                               config.hidden_size, config.num_layers, config.activation)
        self.num_updates = config.num_updates
        self.final_window = max(1, math.ceil(config.final_window * self.num_updates))
        self.max_truncations = max_truncations(self.spec, config.num_steps)

    # ---- public API ------------------------------------------------------------------
    def __call__(self, key, drift_params, hparams: Hyperparams | None = None) -> dict:
        _, metrics = self.run(key, drift_params, hparams)
        return metrics

    def run(self, key, drift_params, hparams: Hyperparams | None = None):
        """The whole run: (final RunnerState, metrics)."""
        hparams = self.default_hparams() if hparams is None else hparams
        state = self.init(key, hparams)
        record = self.empty_record(state, drift_params, hparams)
        state, record = self.run_updates(state, drift_params, hparams, record, 0, self.num_updates)
        return state, self.summarize(record)

    def default_hparams(self) -> Hyperparams:
        return Hyperparams.from_config(self.config)

    def init(self, key, hparams: Hyperparams | None = None) -> RunnerState:
        hparams = self.default_hparams() if hparams is None else hparams
        cfg, spec = self.config, self.spec
        key, net_key, env_key = jax.random.split(key, 3)
        params = self.net.init(net_key, spec.obs_dim)
        opt_state = self._optimizer(hparams).init(self._trained_params(params))
        obs, env_state = jax.vmap(spec.env.reset, in_axes=(0, None))(
            jax.random.split(env_key, cfg.num_envs), spec.env_params)
        obs = jax.vmap(flatten_obs)(obs)
        return RunnerState(
            params=params, opt_state=opt_state, env_state=env_state, obs=obs,
            obs_stats=RunningMeanStd.create((spec.obs_dim,)).update(obs),
            return_stats=RunningMeanStd.create(()),
            discounted_return=jnp.zeros(cfg.num_envs), episode_return=jnp.zeros(cfg.num_envs),
            key=key, update=jnp.asarray(0, jnp.int32))

    def empty_record(self, state: RunnerState, drift_params, hparams: Hyperparams | None = None) -> dict:
        """Zeroed per-update metrics, each shaped (num_updates,): `run_updates` fills them in."""
        hparams = self.default_hparams() if hparams is None else hparams
        shapes = jax.eval_shape(lambda s: self.update(s, drift_params, hparams)[1], state)
        return jax.tree.map(lambda x: jnp.zeros((self.num_updates,) + x.shape, x.dtype), shapes)

    def run_updates(self, state: RunnerState, drift_params, hparams: Hyperparams | None, record: dict,
                    start, stop):
        """Updates `start` to `stop` (ints, or traced scalars: one compiled program runs a chunk of
        any length), each writing its metrics into row `update` of `record`: (state, record).

        A run split into chunks computes exactly what one call computes: the loop body is the
        same program, and the loop counter is never batched (vmap leaves it a plain loop).
        """
        hparams = self.default_hparams() if hparams is None else hparams

        def body(carry):
            update, state, record = carry
            state, metrics = self.update(state, drift_params, hparams)
            record = jax.tree.map(lambda rows, value: rows.at[update].set(value), record, metrics)
            return update + 1, state, record

        # a while loop for the whole run and its chunks alike (fori_loop makes a scan of constant bounds)
        stop = jnp.asarray(stop, jnp.int32)
        _, state, record = jax.lax.while_loop(lambda carry: carry[0] < stop, body,
                                              (jnp.asarray(start, jnp.int32), state, record))
        return state, record

    def summarize(self, per_update: dict) -> dict:
        """One run's per-update metrics -> its metrics (curve, final_return, ...).

        Takes unbatched arrays of shape (num_updates,); vmap it for batches of runs.

        `curve[u]` is the mean return of the episodes finished during update u, carried
        forward from the last update that finished one (NaN before the first).
        `final_return` is the mean return of the episodes finished in the last
        `final_window` of training (NaN if none finished there).
        """
        sums, counts = per_update["episode_return_sum"], per_update["episode_count"]
        per_update_mean = jnp.where(counts > 0, sums / jnp.maximum(counts, 1), jnp.nan)

        def carry_forward(last, value):
            value = jnp.where(jnp.isnan(value), last, value)
            return value, value

        _, curve = jax.lax.scan(carry_forward, jnp.asarray(jnp.nan, jnp.float32), per_update_mean)
        window_sum = sums[-self.final_window:].sum()
        window_count = counts[-self.final_window:].sum()
        final_return = jnp.where(window_count > 0, window_sum / jnp.maximum(window_count, 1), jnp.nan)
        return {"final_return": final_return, "curve": curve, **per_update}

    def update_samples(self, state: RunnerState, drift_params, hparams: Hyperparams | None = None):
        """`update`, and the (ratio, advantage, progress) the drift was evaluated at in it:
        `(state, (ratio, advantage, progress))`, each flat. The state is `update`'s.

        Neighbourhood "none": every minibatch step of every epoch, (update_epochs * batch_size,),
        the ratio at that step's params and the advantage normalised per minibatch (if enabled).
        "kl_ball": the step taken (r = 1 if the line search rejected it), on the whole batch.
        """
        hparams = self.default_hparams() if hparams is None else hparams
        progress = state.update.astype(jnp.float32) / self.num_updates
        state, _, inputs = self._update(state, drift_params, hparams, record=True)
        ratio, advantage = (x.reshape(-1) for x in inputs)
        return state, (ratio, advantage, jnp.full_like(ratio, progress))

    # ---- one update ------------------------------------------------------------------
    def update(self, state: RunnerState, drift_params, hparams: Hyperparams):
        state, metrics, _ = self._update(state, drift_params, hparams, record=False)
        return state, metrics

    def _update(self, state: RunnerState, drift_params, hparams: Hyperparams, *, record: bool):
        """(state, metrics, the DriftInputs of the update, or None unless `record`)."""
        cfg = self.config
        progress = state.update.astype(jnp.float32) / self.num_updates
        state, traj, episode_stats = self._rollout(state, hparams)
        batch = self._batch(state, traj, hparams)
        key, update_key = jax.random.split(state.key)
        if cfg.neighbourhood == "kl_ball":
            params, opt_state, metrics, inputs = self._kl_ball_update(
                state.params, state.opt_state, batch, drift_params, progress, hparams, update_key)
        else:
            loss = self._mirror_loss(drift_params, progress, hparams)
            params, opt_state, metrics, inputs = self._minibatch_epochs(
                state.params, state.opt_state, batch, loss, hparams, update_key, record=record)
        state = state.replace(params=params, opt_state=opt_state, key=key, update=state.update + 1)
        return state, {**episode_stats, **metrics}, inputs if record else None

    def _rollout(self, state: RunnerState, hparams: Hyperparams):
        """`num_steps` steps of all envs. Only env-side state is carried through the scan;
        the params are closed over, so XLA does not copy them (and Adam's state) each step."""
        cfg, spec = self.config, self.spec
        actor_params = state.params["actor"]

        # All keys of the rollout in two batched calls rather than one small split a step.
        key, act_key, step_key = jax.random.split(state.key, 3)
        act_keys = jax.random.split(act_key, cfg.num_steps)
        step_keys = jax.random.split(step_key, cfg.num_steps * cfg.num_envs).reshape(
            (cfg.num_steps, cfg.num_envs) + step_key.shape)

        def env_step(carry: _EnvCarry, keys):
            act_key, env_keys = keys
            obs_in = carry.obs_stats.normalize(carry.obs) if cfg.normalize_obs else carry.obs
            dist = self.net.actor.apply(actor_params, obs_in)
            action = networks.sample(act_key, dist, spec.discrete)
            log_prob = networks.log_prob(dist, action, spec.discrete)
            if spec.discrete:
                env_action = action
            else:  # the Gaussian is unbounded; the env gets the action clipped to its box
                env_action = jnp.clip(action, spec.action_low, spec.action_high).reshape(
                    (cfg.num_envs,) + spec.action_shape)
            obs, env_state, reward, terminated, truncated, info = jax.vmap(
                spec.env.step, in_axes=(0, 0, 0, None))(
                env_keys, carry.env_state, env_action, spec.env_params)
            obs = jax.vmap(flatten_obs)(obs)
            final_obs = jax.vmap(flatten_obs)(info["final_observation"])
            reward = jnp.asarray(reward, jnp.float32)
            done = jnp.logical_or(terminated, truncated)

            episode_return = carry.episode_return + reward
            return_sum = carry.return_sum + jnp.sum(jnp.where(done, episode_return, 0.0))
            episode_count = carry.episode_count + jnp.sum(done)
            obs_stats = carry.obs_stats
            if cfg.normalize_obs:
                obs_stats = obs_stats.update(obs)
                # normalised as the next step will feed obs to the policy, so that
                # V(final_obs[t]) == V(obs_in[t+1]) wherever the episode goes on
                final_obs = obs_stats.normalize(final_obs)
            learn_reward, discounted, return_stats = reward, carry.discounted_return, carry.return_stats
            if cfg.normalize_reward:
                discounted = discounted * hparams.gamma + reward
                return_stats = return_stats.update(discounted)
                learn_reward = reward / jnp.sqrt(return_stats.var + 1e-8)
                discounted = jnp.where(done, 0.0, discounted)
            carry = _EnvCarry(env_state, obs, obs_stats, return_stats, discounted,
                              jnp.where(done, 0.0, episode_return), return_sum, episode_count)
            transition = Transition(obs_in, action, log_prob, learn_reward, terminated, done, final_obs)
            return carry, transition

        carry = _EnvCarry(state.env_state, state.obs, state.obs_stats, state.return_stats,
                          state.discounted_return, state.episode_return,
                          jnp.zeros(()), jnp.zeros((), jnp.int32))
        carry, traj = jax.lax.scan(env_step, carry, (act_keys, step_keys))
        state = state.replace(env_state=carry.env_state, obs=carry.obs, obs_stats=carry.obs_stats,
                              return_stats=carry.return_stats, discounted_return=carry.discounted_return,
                              episode_return=carry.episode_return, key=key)
        return state, traj, {"episode_return_sum": carry.return_sum, "episode_count": carry.episode_count}

    def _batch(self, state: RunnerState, traj: Transition, hparams: Hyperparams) -> Batch:
        """Critic values and GAE for a rollout, flattened to a batch.

        The critic runs on T + 1 rows (each step's observation and the last step's final one);
        V(s'_t) is the next row's value, except where an episode was truncated at t < T - 1:
        there the pre-reset final observation is evaluated, at most `self.max_truncations` of
        them per env. (Where an episode terminated, V(s'_t) is not used; where it goes on, the
        next row's observation is the final one, normalised alike.)"""
        cfg = self.config
        # the last step's final observation is the next rollout's first where the episode goes on,
        # and the one to bootstrap from where it was truncated
        values = self.net.critic.apply(state.params["critic"], jnp.concatenate([traj.obs, traj.final_obs[-1:]]))
        value, next_value = values[:-1], values[1:]
        truncated = jnp.logical_and(traj.done, jnp.logical_not(traj.terminated))  # (T, N)
        if self.max_truncations >= cfg.num_steps:
            final_values = self.net.critic.apply(state.params["critic"], traj.final_obs)
            next_value = jnp.where(truncated, final_values, next_value)
        else:
            next_value = self._bootstrap_truncations(state.params["critic"], traj.final_obs, truncated, next_value)
        advantage, target = compute_gae(traj.reward, value, next_value, traj.terminated, traj.done,
                                        hparams.gamma, hparams.gae_lambda)
        batch = Batch(traj.obs, traj.action, traj.log_prob, value, advantage, target)
        return jax.tree.map(lambda x: x.reshape((cfg.batch_size,) + x.shape[2:]), batch)

    def _bootstrap_truncations(self, critic_params, final_obs, truncated, next_value):
        """`next_value` with V(final_obs[t, n]) wherever env n was truncated at step t. NaN in an
        env's column if it truncated more often than `max_truncations` allows (never, for a
        gymnax time limit: the bound cannot fail silently)."""
        times = jax.vmap(lambda column: jnp.nonzero(column, size=self.max_truncations, fill_value=0)[0],
                         in_axes=1)(truncated)  # (N, K): the truncation steps of each env, padded with 0
        envs = jnp.arange(truncated.shape[1])[:, None]
        gathered = self.net.critic.apply(critic_params, final_obs[times, envs])  # (N, K)
        keep = truncated[times, envs]  # padding entries write the value already there
        next_value = next_value.at[times, envs].set(jnp.where(keep, gathered, next_value[times, envs]))
        overflow = jnp.sum(truncated, axis=0) > self.max_truncations
        return jnp.where(overflow[None, :], jnp.nan, next_value)

    # ---- optimisation ----------------------------------------------------------------
    def _optimizer(self, hparams: Hyperparams) -> optax.GradientTransformation:
        cfg = self.config
        steps_per_update = cfg.update_epochs * cfg.num_minibatches
        if cfg.anneal_lr:
            def learning_rate(count):
                # decay per update (as purejaxrl), reaching 0 after the last update
                done_updates = count // steps_per_update
                return hparams.lr * (1.0 - done_updates / self.num_updates)
        else:
            learning_rate = hparams.lr
        # One flat vector instead of a dozen small leaves: XLA CPU pays a fixed cost per op
        # (docs/design.md, Measured decisions).
        return optax.flatten(optax.chain(optax.clip_by_global_norm(hparams.max_grad_norm),
                                         optax.adam(learning_rate, eps=1e-5)))

    def _trained_params(self, params):
        """The params the Adam optimiser owns (all, or the critic alone in a KL ball)."""
        return params["critic"] if self.config.neighbourhood == "kl_ball" else params

    def _policy_terms(self, actor_params, batch: Batch, drift_params, progress, advantage):
        """(mirror objective, metrics, DriftInputs): the one place the drift is evaluated."""
        dist = self.net.actor.apply(actor_params, batch.obs)
        log_ratio = networks.log_prob(dist, batch.action, self.spec.discrete) - batch.log_prob
        # r in [e^-20, e^20]: keeps log r and r*A finite for every drift (never binds in practice)
        log_ratio = jnp.clip(log_ratio, -LOG_RATIO_CLIP, LOG_RATIO_CLIP)
        ratio = jnp.exp(log_ratio)
        drift = self.drift(drift_params, ratio, advantage, progress)
        objective = jnp.mean(ratio * advantage - drift)
        info = {
            "entropy": jnp.mean(networks.entropy(dist, self.spec.discrete)),
            "approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
            "drift": jnp.mean(drift),
        }
        return objective, info, DriftInputs(ratio, advantage)

    def _value_loss(self, critic_params, batch: Batch, hparams: Hyperparams):
        value = self.net.critic.apply(critic_params, batch.obs)
        unclipped = jnp.square(value - batch.target)
        clipped_value = batch.value + jnp.clip(value - batch.value, -hparams.vf_clip, hparams.vf_clip)
        clipped = jnp.maximum(unclipped, jnp.square(clipped_value - batch.target))
        return 0.5 * jnp.mean(jnp.where(hparams.vf_clip > 0, clipped, unclipped))

    def _normalized_advantage(self, advantage):
        if not self.config.normalize_advantages:
            return advantage
        return (advantage - advantage.mean()) / (advantage.std() + 1e-8)

    def _mirror_loss(self, drift_params, progress, hparams: Hyperparams):
        """The loss of actor and critic together: -(mirror objective) + value loss - entropy bonus."""
        def loss_fn(params, minibatch):
            advantage = self._normalized_advantage(minibatch.advantage)
            objective, info, inputs = self._policy_terms(params["actor"], minibatch, drift_params, progress,
                                                         advantage)
            value_loss = self._value_loss(params["critic"], minibatch, hparams)
            loss = -objective + hparams.vf_coef * value_loss - hparams.ent_coef * info["entropy"]
            return loss, ({"policy_loss": -objective, "value_loss": value_loss, **info}, inputs)
        return loss_fn

    def _critic_loss(self, hparams: Hyperparams):
        """The critic's loss alone (a KL ball moves the actor by itself)."""
        def loss_fn(critic_params, minibatch):
            value_loss = self._value_loss(critic_params, minibatch, hparams)
            return value_loss, ({"value_loss": value_loss}, None)
        return loss_fn

    def _minibatch_epochs(self, trained, opt_state, batch: Batch, loss_fn, hparams: Hyperparams, key, *,
                          record: bool = False):
        """`update_epochs` shuffled passes of minibatch Adam on `loss_fn(trained, minibatch) ->
        (loss, (metrics, DriftInputs or None))`: (trained, opt_state, mean metrics, DriftInputs
        of each step if `record` else None)."""
        cfg = self.config
        tx = self._optimizer(hparams)

        def minibatch_step(carry, rows):
            trained, opt_state = carry
            # the minibatch gathered where it is used: no shuffled copy of the whole batch per epoch
            minibatch = jax.tree.map(lambda x: jnp.take(x, rows, axis=0), batch)
            grads, (info, inputs) = jax.grad(loss_fn, has_aux=True)(trained, minibatch)
            updates, opt_state = tx.update(grads, opt_state, trained)
            # only update_samples stacks the inputs: update's scan carries nothing extra
            return (optax.apply_updates(trained, updates), opt_state), (info, inputs if record else None)

        def epoch(carry, epoch_key):
            perm = random_permutation(epoch_key, cfg.batch_size)
            return jax.lax.scan(minibatch_step, carry, perm.reshape(cfg.num_minibatches, cfg.minibatch_size))

        (trained, opt_state), (info, inputs) = jax.lax.scan(epoch, (trained, opt_state),
                                                            jax.random.split(key, cfg.update_epochs))
        return trained, opt_state, jax.tree.map(jnp.mean, info), inputs

    def _kl_ball_update(self, params, opt_state, batch: Batch, drift_params, progress, hparams, key):
        cfg, discrete = self.config, self.spec.discrete
        advantage = self._normalized_advantage(batch.advantage)
        old_dist = jax.lax.stop_gradient(self.net.actor.apply(params["actor"], batch.obs))

        def objective(actor_params):
            return self._policy_terms(actor_params, batch, drift_params, progress, advantage)[0]

        def mean_kl(actor_params):
            return jnp.mean(networks.kl_divergence(old_dist, self.net.actor.apply(actor_params, batch.obs), discrete))

        # The radius is the natural-gradient step's size; anneal it as Adam's lr is annealed
        # elsewhere: a fixed one could push a solved seed off late in training (docs/design.md,
        # Measured decisions).
        delta = hparams.kl_delta * (1.0 - progress) if cfg.anneal_lr else hparams.kl_delta
        actor, step_info = kl_ball_step(params["actor"], objective, mean_kl, delta=delta,
                                        cg_iters=cfg.cg_iters, cg_damping=cfg.cg_damping,
                                        line_search_steps=cfg.line_search_steps)
        # the step taken is the drift's input that counted (update_samples records it)
        new_objective, info, inputs = self._policy_terms(actor, batch, drift_params, progress, advantage)
        info["approx_kl"] = mean_kl(actor)
        critic, opt_state, value_info, _ = self._minibatch_epochs(
            params["critic"], opt_state, batch, self._critic_loss(hparams), hparams, key)
        return ({"actor": actor, "critic": critic}, opt_state,
                {"policy_loss": -new_objective, **value_info, **info, **step_info}, inputs)


def max_truncations(spec: EnvSpec, num_steps: int) -> int:
    """How often one env can be truncated in a rollout of `num_steps` steps: gymnax truncates
    when an episode's step count reaches `max_steps_in_episode`, so at most once in that many
    steps. `num_steps` (every step) for an env without that limit."""
    limit = getattr(spec.env_params, "max_steps_in_episode", None)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        return num_steps
    return min(num_steps, math.ceil(num_steps / limit))


def make_train(config: TrainConfig, drift: Drift) -> Trainer:
    """The pure training function of one configuration: `train(key, drift_params) -> metrics`."""
    return Trainer(config, drift)
