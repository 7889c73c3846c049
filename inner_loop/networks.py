"""Actor-critic networks and the action distributions they parameterise.

Separate actor and critic MLPs (as in purejaxrl), orthogonal initialisation (our own
initialiser, see `orthogonal`: the same numbers as flax's, without the deadlock its batched
QR causes on multi-core CPUs). The actor
outputs categorical logits (discrete actions) or a Gaussian mean with a state-independent
log standard deviation (continuous actions). The parameters are `{"actor": ..., "critic":
...}` so the KL-ball update can step the actor alone.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

@jax.custom_batching.custom_vmap
def _qr_one_matrix(a):
    q, r = jnp.linalg.qr(a)
    return q, r


@_qr_one_matrix.def_vmap
def _qr_one_matrix_at_a_time(axis_size, in_batched, a):
    # Why: a *batched* CPU QR blocks XLA's intra-op pool threads, and two at once deadlock;
    # one matrix at a time (lax.map) runs each QR inline (docs/design.md, Measured decisions).
    if not in_batched[0]:
        return _qr_one_matrix(a), (False, False)
    return jax.lax.map(_qr_one_matrix, a), (True, True)


def orthogonal(scale: float = 1.0):
    """Orthogonal kernel initialiser for 2-D Dense kernels (Saxe et al. 2014), numerically
    equal to `flax.linen.initializers.orthogonal(scale)`, but safe under vmap on CPU."""

    def init(key, shape, dtype=jnp.float32):
        rows, cols = shape
        tall = (cols, rows) if rows < cols else (rows, cols)
        q, r = _qr_one_matrix(jax.random.normal(key, tall, dtype))
        q = q * jnp.sign(jnp.diag(r))[None, :]  # a unique Q (Haar-distributed)
        return scale * (q.T if rows < cols else q)

    return init


_ACTIVATIONS: dict[str, Callable] = {"tanh": nn.tanh, "relu": nn.relu, "gelu": nn.gelu, "silu": nn.silu}


class MLP(nn.Module):
    """`num_layers` hidden layers of `hidden_size`, then a linear head of `out_dim`."""

    hidden_size: int
    num_layers: int
    activation: str
    out_dim: int
    head_scale: float

    @nn.compact
    def __call__(self, x):
        act = _ACTIVATIONS[self.activation]
        x = x.astype(jnp.float32)
        for _ in range(self.num_layers):
            x = nn.Dense(self.hidden_size, kernel_init=orthogonal(np.sqrt(2)),
                         bias_init=nn.initializers.zeros)(x)
            x = act(x)
        return nn.Dense(self.out_dim, kernel_init=orthogonal(self.head_scale),
                        bias_init=nn.initializers.zeros)(x)


class Actor(nn.Module):
    action_dim: int
    discrete: bool
    hidden_size: int
    num_layers: int
    activation: str

    @nn.compact
    def __call__(self, obs):
        out = MLP(self.hidden_size, self.num_layers, self.activation, self.action_dim, 0.01)(obs)
        if self.discrete:
            return out  # logits
        log_std = self.param("log_std", nn.initializers.zeros, (self.action_dim,))
        return out, jnp.broadcast_to(log_std, out.shape)


class Critic(nn.Module):
    hidden_size: int
    num_layers: int
    activation: str

    @nn.compact
    def __call__(self, obs):
        return MLP(self.hidden_size, self.num_layers, self.activation, 1, 1.0)(obs)[..., 0]


class ActorCritic(NamedTuple):
    """The two modules of one agent; `params = {"actor": ..., "critic": ...}`."""

    actor: Actor
    critic: Critic

    @classmethod
    def create(cls, action_dim: int, discrete: bool, hidden_size: int, num_layers: int,
               activation: str) -> "ActorCritic":
        return cls(Actor(action_dim, discrete, hidden_size, num_layers, activation),
                   Critic(hidden_size, num_layers, activation))

    def init(self, key, obs_dim: int) -> dict:
        actor_key, critic_key = jax.random.split(key)
        dummy = jnp.zeros((obs_dim,), jnp.float32)  # inputs are cast to float32 in MLP
        return {"actor": self.actor.init(actor_key, dummy), "critic": self.critic.init(critic_key, dummy)}


# Distributions: the policy's output `dist` is logits (discrete) or (mean, log_std).

def sample(key, dist, discrete: bool):
    if discrete:
        return jax.random.categorical(key, dist)
    mean, log_std = dist
    return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape)


def log_prob(dist, action, discrete: bool):
    if discrete:
        logp = jax.nn.log_softmax(dist)
        return jnp.take_along_axis(logp, action[..., None].astype(jnp.int32), axis=-1)[..., 0]
    mean, log_std = dist
    z = (action - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * jnp.log(2 * jnp.pi), axis=-1)


def entropy(dist, discrete: bool):
    if discrete:
        logp = jax.nn.log_softmax(dist)
        return -jnp.sum(jnp.exp(logp) * logp, axis=-1)
    _, log_std = dist
    return jnp.sum(log_std + 0.5 * (1.0 + jnp.log(2 * jnp.pi)), axis=-1)


def kl_divergence(dist_old, dist_new, discrete: bool):
    """KL(pi_old || pi_new) per state, in closed form."""
    if discrete:
        logp_old = jax.nn.log_softmax(dist_old)
        logp_new = jax.nn.log_softmax(dist_new)
        return jnp.sum(jnp.exp(logp_old) * (logp_old - logp_new), axis=-1)
    mean_old, log_std_old = dist_old
    mean_new, log_std_new = dist_new
    var_ratio = jnp.exp(2 * (log_std_old - log_std_new))
    mahalanobis = ((mean_old - mean_new) * jnp.exp(-log_std_new)) ** 2
    return jnp.sum(0.5 * (var_ratio + mahalanobis - 1.0) - (log_std_old - log_std_new), axis=-1)
