"""MCTS inside the learned model, on top of `mctx` (the only module that imports it).

The search sees the model only through a `networks.LatentModel` (pure functions of the
parameters), and is built once per setting: `make_search(fns, config, discount, horizon)` returns
a `SearchFn(params, key, observation, action_mask, temperature, explore) -> SearchOutput`
(`make_search_for(model, config)` builds the run's).

The model predicts a *value prefix* (the discounted-free sum of rewards since the last LSTM reset)
rather than a per-step reward. `recurrent_fn` turns prefixes into the per-edge rewards mctx needs:
reward = child prefix - parent prefix, where the LSTM and the parent prefix are reset to zero every
`value_prefix_horizon` depths, counted from the root (EfficientZero, Sec. 4.2). Each simulation
applies `recurrent_fn` once per root, so a search costs exactly `B * num_simulations` model steps.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Protocol

import jax
import jax.numpy as jnp
import mctx
from flax import struct

from dreamer.config import Config, SearchConfig
from dreamer.networks import LatentModel, LSTMState, WorldModel, latent_model
from dreamer.transforms import categorical_to_scalar


@struct.dataclass
class SearchEmbedding:
    """What a search node carries.

    Attributes:
      latent: [B, *latent] latent state of the node.
      lstm: LSTMState, each [B, lstm_hidden], after consuming this node's latent.
      prefix: [B] value prefix predicted at this node (0 at the root and at a reset).
      depth: [B] int32 depth from the root.
    """

    latent: jax.Array
    lstm: LSTMState
    prefix: jax.Array
    depth: jax.Array


class SearchOutput(NamedTuple):
    action: jax.Array  # [B] int32 chosen action
    policy: jax.Array  # [B, A] search policy (visit distribution / Gumbel improved policy)
    value: jax.Array  # [B] root value estimated by search
    predicted_value: jax.Array  # [B] the network's value at the root
    memory: jax.Array | None = None  # [B, M] the memory after the root (`model.memory=recurrent`)


def value_prefix_to_reward(
    child_prefix: jax.Array, parent_prefix: jax.Array, parent_depth: jax.Array, horizon: int
) -> jax.Array:
    """Per-edge reward from value prefixes: child - parent, or child alone when the LSTM resets.

    The reset happens on edges leaving a node whose depth is a multiple of `horizon`.
    """
    reset = (parent_depth % horizon) == 0
    return child_prefix - jnp.where(reset, 0.0, parent_prefix)


def make_recurrent_fn(fns: LatentModel, discount: float, horizon: int):
    """Builds mctx's `recurrent_fn(params, key, action, embedding)` over the latent model `fns`."""

    def recurrent_fn(params, rng_key, action, embedding: SearchEmbedding):
        del rng_key
        reset = (embedding.depth % horizon) == 0
        lstm = jax.tree.map(lambda x: jnp.where(reset[:, None], 0.0, x), embedding.lstm)
        latent = fns.dynamics(params, embedding.latent, action)
        prefix_logits, lstm = fns.value_prefix(params, latent, lstm)
        policy_logits, value_logits = fns.predict(params, latent)
        prefix = categorical_to_scalar(prefix_logits, fns.reward_support)
        reward = value_prefix_to_reward(prefix, embedding.prefix, embedding.depth, horizon)
        batch = action.shape[0]
        out = mctx.RecurrentFnOutput(
            reward=reward,
            discount=jnp.full((batch,), discount, jnp.float32),
            prior_logits=policy_logits,
            value=categorical_to_scalar(value_logits, fns.value_support),
        )
        return out, SearchEmbedding(latent, lstm, prefix, embedding.depth + 1)

    return recurrent_fn


def root(fns: LatentModel, params, observation: jax.Array):
    """Encodes observations [B, *obs] (or what the model reads: `networks.agent_input`) into
    mctx's RootFnOutput with a fresh search embedding."""
    latent = fns.represent(params, observation)
    policy_logits, value_logits = fns.predict(params, latent)
    batch = latent.shape[0]
    embedding = SearchEmbedding(
        latent=latent,
        lstm=fns.initial_lstm(batch),
        prefix=jnp.zeros((batch,), jnp.float32),
        depth=jnp.zeros((batch,), jnp.int32),
    )
    value = categorical_to_scalar(value_logits, fns.value_support)
    return mctx.RootFnOutput(prior_logits=policy_logits, value=value, embedding=embedding)


def legal_root_noise(key, prior_logits: jax.Array, action_mask: jax.Array, fraction: float,
                     alpha: float) -> jax.Array:
    """Root prior logits with Dirichlet noise over the legal actions only (EfficientZero's and
    LightZero's root noise): (1 - fraction) * the prior renormalised over the legal actions +
    fraction * Dir(alpha, ..., alpha) drawn over the legal actions alone. mctx's `muzero_policy`
    draws the noise over all actions and masks afterwards, so a world with L legal actions of A
    keeps about L / A of the noise. The Dirichlet is drawn as normalised Gamma(alpha) samples,
    in log space (`jax.random.loggamma`), so small alphas do not underflow to an all-zero draw."""
    log_gamma = jax.random.loggamma(key, alpha, prior_logits.shape)
    noise = jax.nn.softmax(jnp.where(action_mask, log_gamma, -jnp.inf), axis=-1)
    prior = jax.nn.softmax(jnp.where(action_mask, prior_logits, -jnp.inf), axis=-1)
    noisy = (1.0 - fraction) * prior + fraction * noise
    return jnp.where(action_mask, jnp.log(jnp.maximum(noisy, jnp.finfo(noisy.dtype).tiny)),
                     jnp.finfo(noisy.dtype).min)


def qtransform_tree_min_max(tree: mctx.Tree, node_index, *, floor: float = 0.01):
    """EfficientZero's Q normalisation for PUCT, on one (unbatched) mctx tree: every child's Q
    (reward + discount x value) is normalised by one min and max taken over all visited Qs of the
    whole tree, the range floored at `floor` (EfficientZero V1/V2 and LightZero: 0.01), instead
    of mctx's per-node min-max over the parent and its siblings with a 1e-8 floor. Unvisited
    children score 0, as under mctx's default (EfficientZero gives them the parent's mean Q)."""
    qvalues = tree.qvalues(node_index)
    visited = tree.children_visits > 0  # [nodes, actions]
    every_q = tree.children_rewards + tree.children_discounts * tree.children_values
    low = jnp.min(jnp.where(visited, every_q, jnp.inf))
    high = jnp.max(jnp.where(visited, every_q, -jnp.inf))
    low = jnp.where(jnp.any(visited), low, 0.0)  # nothing visited yet: nothing to normalise
    high = jnp.where(jnp.any(visited), high, 0.0)
    normalised = (qvalues - low) / jnp.maximum(high - low, floor)
    return jnp.where(tree.children_visits[node_index] > 0, normalised, 0.0)


def qtransform_tree_completed_by_mix_value(tree: mctx.Tree, node_index, *, floor: float = 0.01):
    """EfficientZero's tree-wide Q normalisation for Gumbel search, on one (unbatched) mctx tree:
    mctx's completed Q-values (unvisited actions take the mixed value) and its scale
    (50 + max visits) x 0.1, but normalised by one min and max over all visited Qs of the whole
    tree with the range floored at `floor` (LightZero's Gumbel MuZero and EfficientZero: 0.01),
    clipped to [0, 1], instead of mctx's min-max over the node's own completed Qs (floor 1e-8),
    which stretches any gap between siblings, however small, to the full range."""
    visits = tree.children_visits[node_index]
    # With value_scale 1 and maxvisit_init 1, mctx returns (1 + max visits) x the completed Qs.
    completed = mctx.qtransform_completed_by_mix_value(
        tree, node_index, value_scale=1.0, maxvisit_init=1.0, rescale_values=False)
    completed = completed / (1.0 + jnp.max(visits))
    visited = tree.children_visits > 0
    every_q = tree.children_rewards + tree.children_discounts * tree.children_values
    low = jnp.min(jnp.where(visited, every_q, jnp.inf))
    high = jnp.max(jnp.where(visited, every_q, -jnp.inf))
    low = jnp.where(jnp.any(visited), low, jnp.min(completed))
    high = jnp.where(jnp.any(visited), high, jnp.max(completed))
    normalised = jnp.clip((completed - low) / jnp.maximum(high - low, floor), 0.0, 1.0)
    return (50.0 + jnp.max(visits)) * 0.1 * normalised


def qtransform_for(config: SearchConfig):
    """The Q transform mctx gets for `config`: with `q_normalisation=tree` EfficientZero's
    tree-wide min-max floored at `q_floor`, else mctx's per-node default (PUCT's min-max over the
    parent and its siblings, Gumbel's completed-by-mix-value)."""
    tree = config.q_normalisation == "tree"
    if config.algorithm == "muzero":
        return (functools.partial(qtransform_tree_min_max, floor=config.q_floor) if tree
                else mctx.qtransform_by_parent_and_siblings)
    return (functools.partial(qtransform_tree_completed_by_mix_value, floor=config.q_floor)
            if tree else mctx.qtransform_completed_by_mix_value)


class SearchFn(Protocol):
    """A search policy built once by `make_search`; pure, jit it (`explore` static)."""

    def __call__(self, params, key: jax.Array, observation: jax.Array, action_mask: jax.Array,
                 temperature: jax.Array | float = 1.0, explore: bool = True) -> SearchOutput:
        """Searches from a batch of observations.

        Args:
          params: the latent model's parameters.
          key: PRNG key (consumed).
          observation: [B, *obs], or what the model reads (`networks.agent_input`).
          action_mask: [B, A] bool, valid actions at the root.
          temperature: with `explore`, muzero's visit-count temperature for the chosen action (0
            is greedy; Gumbel picks by sequential halving, its root noise scaled by the
            temperature with `search.gumbel_temperature`). Without `explore` (evaluation): 0
            plays the search's best action, T > 0 samples the search policy sharpened to
            p^(1/T) (visit counts ^(1/T) for muzero, softmax(logits / T) for Gumbel's improved
            policy and the policy head).
          explore: add root noise (Dirichlet / Gumbel); off for evaluation.

        Returns:
          SearchOutput with the action, the search policy and values.
        """


def make_search(fns: LatentModel, config: SearchConfig, discount: float,
                horizon: int) -> SearchFn:
    """The search policy of `config` over the latent model `fns` (see SearchFn), with `discount`
    (gamma inside the tree) and `horizon` (the value-prefix LSTM's reset interval) fixed here,
    so callers pass only what changes per call."""
    recurrent_fn = make_recurrent_fn(fns, discount, horizon)

    def search(params, key, observation, action_mask, temperature=1.0,
               explore=True) -> SearchOutput:
        root_output = root(fns, params, observation)
        invalid = ~action_mask
        if config.algorithm == "none":
            return policy_head_action(root_output, key, action_mask, temperature)
        if config.algorithm == "muzero":
            if explore and config.dirichlet_fraction > 0:  # noise over the legal actions only
                root_output = root_output.replace(prior_logits=legal_root_noise(
                    jax.random.fold_in(key, 2), root_output.prior_logits, action_mask,
                    config.dirichlet_fraction, config.dirichlet_alpha))
            out = mctx.muzero_policy(
                params,
                key,
                root_output,
                recurrent_fn,
                config.num_simulations,
                invalid_actions=invalid,
                dirichlet_fraction=0.0,  # added above, over the legal actions
                pb_c_init=config.pb_c_init,
                pb_c_base=config.pb_c_base,
                temperature=temperature if explore else 0.0,
                qtransform=qtransform_for(config),
            )
        else:
            out = mctx.gumbel_muzero_policy(
                params,
                key,
                root_output,
                recurrent_fn,
                config.num_simulations,
                invalid_actions=invalid,
                max_num_considered_actions=considered_actions(config, invalid.shape[-1]),
                gumbel_scale=gumbel_scale(config, temperature, explore),
                qtransform=qtransform_for(config),
            )
        action = out.action
        if not explore:
            weights = out.action_weights
            logits = jnp.where(action_mask & (weights > 0),
                               jnp.log(jnp.maximum(weights, 1e-30)), -jnp.inf)
            sampled = sample_at_temperature(jax.random.fold_in(key, 1), logits, temperature)
            action = jnp.where(jnp.asarray(temperature) > 0, sampled, action)
        return SearchOutput(
            action=action.astype(jnp.int32),
            policy=out.action_weights,
            value=out.search_tree.node_values[:, mctx.Tree.ROOT_INDEX],
            predicted_value=root_output.value,
        )

    return search


def gumbel_scale(config: SearchConfig, temperature, explore: bool):
    """The scale of the root's Gumbel noise: 0 in evaluation; while collecting 1, or the acting
    temperature with `search.gumbel_temperature`."""
    if not explore:
        return 0.0
    return jnp.asarray(temperature, jnp.float32) if config.gumbel_temperature else 1.0


def considered_actions(config, num_actions: int) -> int:
    """Gumbel's m for a world of `num_actions` actions: `search.max_num_considered_actions`, or
    with 0 EfficientZero V2's rule on Atari (`ez/agents/ez_atari.py`): 2 below 4 actions, 4 below
    16, else 8."""
    m = config.max_num_considered_actions
    if m:
        return m
    return 2 if num_actions < 4 else (4 if num_actions < 16 else 8)


def make_search_for(model: WorldModel, config: Config) -> SearchFn:
    """The run's search: `model`'s latent model with `config.search`, `train.discount` and
    `train.value_prefix_horizon` (what acting, reanalysis and the learner search with)."""
    return make_search(latent_model(model), config.search, config.train.discount,
                       config.train.value_prefix_horizon)


def sample_at_temperature(key, logits: jax.Array, temperature) -> jax.Array:
    """[B] actions drawn from softmax(logits / T) (logits [B, A], -inf where not allowed)."""
    temperature = jnp.maximum(jnp.asarray(temperature, jnp.float32), 1e-6)
    return jax.random.categorical(key, logits / temperature, axis=-1)


def policy_head_action(root_output, key, action_mask, temperature) -> SearchOutput:
    """The planning-free ablation: the masked prior is the policy; sample it at `temperature`
    (greedy at 0), when collecting and when evaluating. No model step is spent."""
    logits = jnp.where(action_mask, root_output.prior_logits, -jnp.inf)
    policy = jax.nn.softmax(logits, axis=-1)
    greedy = jnp.argmax(logits, axis=-1)
    sampled = sample_at_temperature(key, logits, temperature)
    action = jnp.where(jnp.asarray(temperature) > 0, sampled, greedy)
    return SearchOutput(
        action=action.astype(jnp.int32),
        policy=policy,
        value=root_output.value,
        predicted_value=root_output.value,
    )


def plain_mctx_action(params, key, prior_logits: jax.Array, value: jax.Array, embedding, step,
                      config: SearchConfig) -> jax.Array:
    """[B] actions of mctx's own search at its defaults (`muzero_policy`, or
    `gumbel_muzero_policy` with `config.max_num_considered_actions`), none of this module's
    additions: no value-prefix bookkeeping, masks, legal-only noise or Q normalisation. It is
    what a user writes with mctx alone, the baseline of `dreamer bench search`
    (`bench.raw_mctx_search`), kept here so that this module stays the only one importing mctx.

    Args:
      params, key: passed to mctx (the key is consumed).
      prior_logits, value: [B, A] and [B], the root's prior and value.
      embedding: the roots' embedding (any pytree with leading [B]).
      step: `(params, action [B], embedding) -> (reward [B], discount [B], prior_logits [B, A],
        value [B], embedding)`, one model step from every node of the batch.
      config: the algorithm, simulations and considered actions.
    """

    def recurrent_fn(params, rng_key, action, embedding):
        del rng_key
        reward, discount, prior_logits, value, embedding = step(params, action, embedding)
        out = mctx.RecurrentFnOutput(reward=reward, discount=discount,
                                     prior_logits=prior_logits, value=value)
        return out, embedding

    root_output = mctx.RootFnOutput(prior_logits=prior_logits, value=value, embedding=embedding)
    policy = mctx.muzero_policy if config.algorithm == "muzero" else functools.partial(
        mctx.gumbel_muzero_policy,
        max_num_considered_actions=considered_actions(config, prior_logits.shape[-1]))
    return policy(params, key, root_output, recurrent_fn, config.num_simulations).action
