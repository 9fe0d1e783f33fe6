"""The learner: an update = sample, reanalyse, build targets, unroll, update; `make_train_many`
runs the updates of one learner phase in one jitted `lax.scan`.

Losses (EfficientZero): policy cross-entropy + value cross-entropy + value-prefix cross-entropy
+ SimSiam temporal consistency (+ with `train.entropy_weight` V2's policy entropy bonus), the
unrolled steps' losses scaled by 1/K and the gradient entering the dynamics scaled by 1/2
(MuZero). Targets come from the target network, refreshed every
`target_update_interval` updates; a fraction of each batch gets fresh policy targets from search
with the target network (reanalysis). With `train.augment_shift` / `train.augment_intensity` the
observations the loss encodes (the unroll's first and the consistency targets) are augmented
(`dreamer.augment`, EfficientZero's shift and intensity); the targets' are not.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import struct

from dreamer import augment as augment_lib
from dreamer import parallel
from dreamer import replay as replay_lib
from dreamer import targets as targets_lib
from dreamer.config import Config, ConfigError
from dreamer.networks import Remembered, WorldModel, agent_input, memory_size, model_supports
from dreamer.search import make_search_for
from dreamer.transforms import categorical_to_scalar, scalar_to_categorical


@struct.dataclass
class TrainState:
    """Learner state.

    Attributes:
      params: online network parameters.
      target_params: target network parameters.
      opt_state: optax state.
      updates: [] int32 updates done.
    """

    params: Any
    target_params: Any
    opt_state: Any
    updates: jax.Array


@dataclasses.dataclass(frozen=True)
class UpdateCost:
    """Latent model steps one update spends (static for a config), for the ledger."""

    unroll: int
    reanalyse: int


class LossTerms(NamedTuple):
    policy: jax.Array
    value: jax.Array
    value_prefix: jax.Array
    consistency: jax.Array
    entropy: jax.Array | None = None  # only with train.entropy_weight > 0


def negative_entropy(logits: jax.Array) -> jax.Array:
    """[..., A] logits -> [...] sum_a p_a log p_a of their softmax (minus the entropy): the
    entropy bonus's loss term, lowest (-log A) at the uniform policy."""
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return jnp.sum(jnp.exp(log_p) * log_p, axis=-1)


def legal_logits(logits: jax.Array, action_mask: jax.Array) -> jax.Array:
    """[..., A] logits with the illegal actions' set to a large negative number: the softmax is
    over the legal actions, and the illegal ones get no gradient. Where every action is legal
    the logits are returned unchanged."""
    return jnp.where(action_mask, logits, jnp.float32(-1e9))


def scale_gradient(x, scale: float):
    """Identity forward; gradient multiplied by `scale` backward."""
    return x * scale + jax.lax.stop_gradient(x) * (1.0 - scale)


def make_optimizer(config: Config) -> optax.GradientTransformation:
    t = config.train
    warmup = optax.linear_schedule(0.0, t.learning_rate, max(t.lr_warmup_updates, 1))
    if t.lr_decay_updates > 0:
        after = optax.piecewise_constant_schedule(t.learning_rate, {t.lr_decay_updates: 0.1})
    else:
        after = optax.constant_schedule(t.learning_rate)
    schedule = optax.join_schedules([warmup, after], [max(t.lr_warmup_updates, 1)])
    if t.optimizer == "sgd":
        core = optax.chain(
            optax.add_decayed_weights(t.weight_decay),
            optax.sgd(schedule, momentum=0.9),
        )
    else:
        core = optax.adamw(schedule, weight_decay=t.weight_decay)
    return optax.chain(optax.clip_by_global_norm(t.max_grad_norm), core)


def make_init_train_state(model: WorldModel, config: Config, sharding=None):
    """The jitted `(key, observations [1, *obs]) -> TrainState` that initialises parameters
    (target = online) and the optimizer, laid out on `sharding` (e.g. replicated over a mesh;
    default: the default device)."""
    optimizer = make_optimizer(config)

    @functools.partial(jax.jit, out_shardings=sharding)
    def build(key, obs):
        size = memory_size(model.config)
        memory = jnp.zeros((obs.shape[0], size), jnp.float32) if size else None
        params = model.init(key, agent_input(obs, memory), jnp.zeros((1,), jnp.int32))
        return TrainState(
            params=params,
            target_params=jax.tree.map(jnp.copy, params),
            opt_state=optimizer.init(params),
            updates=jnp.zeros((), jnp.int32),
        )

    return build


def init_train_state(model: WorldModel, config: Config, key, example_observation,
                     sharding=None) -> TrainState:
    """A fresh TrainState for one example observation (see `make_init_train_state`)."""
    obs = jnp.asarray(example_observation)[None]
    return make_init_train_state(model, config, sharding)(key, obs)


def burn_in(config: Config) -> int:
    """Rows sampled ahead of each window: `train.memory_burn_in` with a recurrent memory, else 0."""
    return config.train.memory_burn_in if config.model.memory == "recurrent" else 0


def window_length(config: Config) -> int:
    return config.train.unroll_steps + config.train.td_steps + 1


def update_cost(config: Config) -> UpdateCost:
    t = config.train
    reanalysed = reanalysed_count(config)
    roots = reanalysed * (t.unroll_steps + 1) * (2 if t.reanalyse_value else 1)
    return UpdateCost(
        unroll=t.batch_size * t.unroll_steps, reanalyse=roots * config.search.simulations_per_root
    )


def target_version(updates, config: Config):
    """The update whose online parameters the target network holds after `updates` updates
    (it is refreshed every `train.target_update_interval`; 0 = the initial parameters)."""
    interval = config.train.target_update_interval
    return (updates // interval) * interval


def reanalysed_count(config: Config) -> int:
    """Samples per batch whose targets come from fresh search (none without planning)."""
    if config.search.algorithm == "none":
        return 0
    return int(round(config.train.reanalyse_fraction * config.train.batch_size))


def advantage_weighted_policy(action, num_actions: int, returns, baseline, valid, max_weight=20.0):
    """Policy targets of advantage-weighted regression (Peng et al., 2019) for the planning-free
    ablation: target = w * onehot(action), w = min(exp(A / scale), max_weight), A = return -
    baseline, with `scale` the standard deviation of the valid advantages in the batch. The
    cross-entropy against it is -w log pi(action).

    Args:
      action: [B, J] int actions taken.
      returns, baseline: [B, J] n-step value targets and the target network's values.
      valid: [B, J] bool, where the return is defined.

    Returns:
      [B, J, A] float32 weighted one-hot targets (constants: no gradient flows into them).
    """
    advantage = jnp.where(valid, returns - baseline, 0.0)
    count = jnp.maximum(jnp.sum(valid), 1)
    mean = jnp.sum(advantage) / count
    std = jnp.sqrt(jnp.sum(jnp.where(valid, (advantage - mean) ** 2, 0.0)) / count)
    weight = jnp.minimum(jnp.exp(advantage / jnp.maximum(std, 1e-3)), max_weight)
    weight = jnp.where(valid, weight, 0.0)
    target = weight[..., None] * jax.nn.one_hot(action, num_actions)
    return jax.lax.stop_gradient(target)


def loss_step_scale(K: int, loss_scale: str) -> jax.Array:
    """[K + 1] weights of the root's and the unrolled steps' losses: 1/K for each unrolled step;
    1 for the root ("muzero", MuZero's pseudocode) or 1/K ("efficientzero": EfficientZero V1/V2
    and LightZero scale the whole loss by 1/K)."""
    root = 1.0 if loss_scale == "muzero" else 1.0 / K
    return jnp.concatenate([jnp.full((1,), root), jnp.full((K,), 1.0 / K)])


def _gather_rows(x, index):
    """x: [B, W, ...], index: [B, J] -> [B, J, ...]."""
    return jax.vmap(lambda xs, i: xs[i])(x, index)


def _flatten2(x):
    return x.reshape(x.shape[0] * x.shape[1], *x.shape[2:])


class TrainParts(NamedTuple):
    """The two halves of an update. `prepare(train_state, replay_state, keys [G],
    age_per_step) -> (windows, targets.Targets)` samples G batches with the current priorities
    and reanalyses them in one search (leading [G] axis on both); `apply_update(train_state,
    replay_state, window, targets, key=None) -> (train_state, replay_state, metrics)` applies
    one (`key` draws its augmentation, needed only when `augmenting`).

    Attributes:
      augmenting: whether the config augments the loss's observations (`augmenting`).
    """

    prepare: Any
    apply_update: Any
    augmenting: bool = False


def augmenting(config: Config) -> bool:
    """Whether `train.augment_shift` or `train.augment_intensity` turns augmentation on."""
    return config.train.augment_shift > 0 or config.train.augment_intensity > 0


def _augment_needs_images(what: str) -> ConfigError:
    return ConfigError(
        f"train.augment_shift / train.augment_intensity augment images, and {what}; set both "
        "to 0 for this world"
    )


def recall_window(model: WorldModel, params, window: replay_lib.Window, before: int,
                  length: int, encoder_gradient: bool = True):
    """-> (`window` without its `before` burn-in rows, what the model reads at its first `length`
    rows, leading dims [B, length]): the observations; or, with a recurrent memory (rows that
    store one), `Remembered` pairs whose memory is recomputed with `params` from the memory stored
    at the first burn-in row, one GRU step a row (`WorldModel.recur` over `WorldModel.encode`). A
    row starts again from its stored memory where the row before it is absent or ended an episode
    (the stored memory is then zeros); with the parameters that acted, the memories recomputed
    are the stored ones.

    Under a gradient, only the first row's memory reaches it (the later rows' memories are the
    consistency targets', under a stop-gradient), so only the burn-in rows' encodings are taken
    with `params`; the window's own are taken under a stop-gradient, and with `encoder_gradient`
    False the burn-in's too (the GRU's steps keep their gradient either way)."""
    if window.rows.memory is None:
        return window, window.rows.observation[:, :length]
    rows = window.rows
    ended = rows.terminated | rows.truncated
    span = before + length
    restart = jnp.concatenate(
        [jnp.ones_like(window.present[:, :1]),
         ~window.present[:, : span - 1] | ended[:, : span - 1]], axis=1)

    def encode(weights, first, last):  # rows [first, last) -> [B, last - first, hidden]
        observation = jax.tree.map(lambda x: x[:, first:last], rows.observation)
        encoded = model.apply(weights, jax.tree.map(_flatten2, observation),
                              method=WorldModel.encode)
        return encoded.reshape(restart.shape[0], last - first, -1)

    # every row but the last is read by the memory after it; all in one batch per part
    frozen = jax.lax.stop_gradient(params)
    parts = []
    if min(before, span - 1) > 0:
        parts.append(encode(params if encoder_gradient else frozen, 0, min(before, span - 1)))
    if span - 1 > before:
        parts.append(encode(frozen, before, span - 1))
    encoded = jnp.concatenate(parts, axis=1) if parts else None

    def step(carried, inputs):
        encoding, stored, fresh = inputs
        memory = jnp.where(fresh[:, None], stored, carried)
        return model.apply(params, encoding, memory, method=WorldModel.recur), memory

    memory = jnp.zeros((restart.shape[0], 0, rows.memory.shape[-1]), rows.memory.dtype)
    last = jnp.zeros_like(rows.memory[:, 0])
    if encoded is not None:
        time_major = jax.tree.map(lambda x: jnp.moveaxis(x[:, : span - 1], 1, 0),
                                  (encoded, rows.memory, restart))
        last, memory = jax.lax.scan(step, last, time_major)
        memory = jnp.moveaxis(memory, 0, 1)
    final = jnp.where(restart[:, span - 1, None], rows.memory[:, span - 1], last)
    memory = jnp.concatenate([memory, final[:, None]], axis=1)[:, before:]  # [B, length, M]
    main = drop_burn_in(window, before)
    return main, Remembered(main.rows.observation[:, :length], memory)


def drop_burn_in(window: replay_lib.Window, before: int) -> replay_lib.Window:
    """`window` without its first `before` rows (the burn-in `replay.sample` gathered)."""
    return window._replace(
        rows=jax.tree.map(lambda x: x[:, before:], window.rows),
        present=window.present[:, before:], version=window.version[:, before:])


def make_train_parts(model: WorldModel, config: Config, mesh=None) -> TrainParts:
    """Builds the `prepare` and `apply_update` halves of a train step (see TrainParts).

    `age_per_step` ([] float32) is the off-policy correction's scale: real steps of age per lost
    TD step (EfficientZero: 0.3 x the run's real steps). It is an argument, not a constant, so a
    change of the run length does not recompile.

    With a device `mesh` the sampled batch is laid out split over its `data` axis (parameters
    stay replicated), so the update is data-parallel and equal to the single-device one.

    Raises ConfigError when augmentation is on (`augmenting`) and the model's observations are
    not images (a vector or token world).
    """
    t, s = config.train, config.search
    augment_on = augmenting(config)
    # image observations get a conv encoder (`make_model`) unless model.encoder=mlp, which takes
    # both kinds: that case is checked on the observations' rank when the loss is traced
    if augment_on and (model.tokens or not (model.image or model.config.encoder == "mlp")):
        raise _augment_needs_images("this world's observations are not images")
    K, n = t.unroll_steps, t.td_steps
    optimizer = make_optimizer(config)
    num_reanalysed = reanalysed_count(config)
    value_support, reward_support = model_supports(model.config)
    search = make_search_for(model, config)
    before = burn_in(config)

    def predict_values(params, observation):  # [B, J, *obs] -> [B, J]
        flat = jax.tree.map(_flatten2, observation)
        latent = model.apply(params, flat, method=WorldModel.represent)
        _, value_logits = model.apply(params, latent, method=WorldModel.predict)
        value = categorical_to_scalar(value_logits, value_support)
        return value.reshape(jax.tree.leaves(observation)[0].shape[:2])

    def search_targets(params, key, observation, action_mask):  # [R, J, ...] -> policy, value
        flat, mask = jax.tree.map(_flatten2, observation), _flatten2(action_mask)
        out = search(params, key, flat, mask)
        shape = action_mask.shape[:2]
        return out.policy.reshape(*shape, -1), out.value.reshape(shape)

    def recall(params, window: replay_lib.Window, length: int):
        return recall_window(model, params, window, before, length, t.memory_encoder_gradient)

    def make_targets(train_state: TrainState, window: replay_lib.Window, key, age_per_step,
                     reanalysed) -> targets_lib.Targets:
        """Targets of a (possibly grouped) batch; `reanalysed` ([R] int32) are the rows whose
        policy (and with `reanalyse_value` bootstrap value) come from fresh search."""
        if t.memory_targets == "stored" and window.rows.memory is not None:
            window = drop_burn_in(window, before)
            seen = Remembered(window.rows.observation, window.rows.memory)
        else:
            window, seen = recall(train_state.target_params, window,
                                  window.rows.action.shape[1] - before)
        rows = window.rows
        # window.age is already in real steps (`prepare` scaled rows by the stream count)
        horizon = (
            targets_lib.off_policy_horizon(window.age.astype(jnp.float32), n, age_per_step)
            if t.off_policy_correction
            else jnp.full(window.age.shape, n, jnp.int32)
        )
        terminated, truncated = targets_lib.episode_ends(rows.terminated, rows.truncated,
                                                         t.time_limit)
        plan = targets_lib.nstep_plan(
            rows.reward, terminated, truncated, window.present, horizon, K, n, t.discount
        )
        boot_obs = jax.tree.map(lambda x: _gather_rows(x, plan.bootstrap_index), seen)
        boot_value = predict_values(train_state.target_params, boot_obs)
        policy_target = rows.policy[:, : K + 1]
        search_value = rows.value[:, : K + 1]
        if num_reanalysed > 0:
            key_policy, key_value = jax.random.split(key)
            obs_re = jax.tree.map(lambda x: x[reanalysed, : K + 1], seen)
            mask_re = rows.action_mask[reanalysed, : K + 1]
            fresh_policy, fresh_value = search_targets(
                train_state.target_params, key_policy, obs_re, mask_re
            )
            policy_target = policy_target.at[reanalysed].set(fresh_policy)
            search_value = search_value.at[reanalysed].set(fresh_value)
            if t.reanalyse_value:
                boot_mask = _gather_rows(rows.action_mask, plan.bootstrap_index)[reanalysed]
                _, boot_search = search_targets(
                    train_state.target_params, key_value,
                    jax.tree.map(lambda x: x[reanalysed], boot_obs), boot_mask
                )
                boot_value = boot_value.at[reanalysed].set(boot_search)
        value_target = targets_lib.value_targets(plan, boot_value)
        if s.algorithm == "none":
            baseline = predict_values(train_state.target_params,
                                      jax.tree.map(lambda x: x[:, : K + 1], seen))
            policy_target = advantage_weighted_policy(
                rows.action[:, : K + 1], rows.policy.shape[-1], value_target, baseline, plan.valid
            )
        if t.value_target == "mixed":
            # EfficientZero V2: trust the search value on old data, the n-step return on recent
            # data: older than train.mixed_value_age real steps, or (0) where the TD horizon was
            # cut; only from update train.mixed_value_after on (the n-step target before that).
            stale = window.age >= t.mixed_value_age if t.mixed_value_age > 0 else horizon < n
            stale = stale[:, None] & (train_state.updates >= t.mixed_value_after)
            value_target = jnp.where(stale & plan.valid, search_value, value_target)
        masks = targets_lib.episode_masks(terminated, truncated, window.present, K)
        prefix_target = targets_lib.value_prefix_targets(
            rows.reward, masks.alive, K, t.value_prefix_horizon
        )
        # policy targets made by the current target network: a buffer-wide pass since its last
        # refresh (the row's version), or this update's reanalysis
        fresh = window.version[:, : K + 1] >= target_version(train_state.updates, config)
        if num_reanalysed > 0:
            fresh = fresh.at[reanalysed].set(True)
        return targets_lib.Targets(value=value_target, value_valid=plan.valid,
                                   value_prefix=prefix_target, policy=policy_target, masks=masks,
                                   fresh=fresh)

    def loss_fn(params, window: replay_lib.Window, targets: targets_lib.Targets, key=None):
        # a recurrent memory's burn-in runs with `params`, so the loss's gradient reaches back
        # through its GRU steps (and its encodings with train.memory_encoder_gradient); the
        # consistency targets' memories are under the stop-gradient below
        window, seen = recall(params, window, K + 1)
        rows = window.rows
        batch = rows.action.shape[0]
        alive, absorbing = targets.masks.alive, targets.masks.absorbing
        value_weight = (targets.value_valid | absorbing).astype(jnp.float32)  # [B, K+1]
        policy_weight = alive.astype(jnp.float32)
        prefix_weight = (alive | absorbing)[:, :K].astype(jnp.float32)  # step k uses row k-1

        first_obs = jax.tree.map(lambda x: x[:, 0], seen)  # [B, *obs]
        next_obs = jax.tree.map(lambda x: x[:, 1:], seen)  # [B, K, *obs]: consistency targets
        if augment_on:
            if rows.observation.ndim != 5:  # [B, window, H, W, C]
                raise _augment_needs_images(
                    f"the observations are not [H, W, C] (shape {rows.observation.shape[2:]})")
            # EfficientZero: the first observation and the targets get independent draws; the K
            # targets of a sample share one
            key_first, key_next = jax.random.split(key)
            first_obs = augment_lib.augment(key_first, first_obs, t.augment_shift,
                                            t.augment_intensity)
            next_obs = augment_lib.augment(key_next, next_obs, t.augment_shift,
                                           t.augment_intensity)
        latent = model.apply(params, first_obs, method=WorldModel.represent)
        policy_logits, value_logits = model.apply(params, latent, method=WorldModel.predict)
        policy_list, value_list, prefix_list, latents = [policy_logits], [value_logits], [], []
        lstm = model.initial_lstm_state(batch)
        for k in range(K):
            if k % t.value_prefix_horizon == 0:
                lstm = model.initial_lstm_state(batch)
            latent = model.apply(params, latent, rows.action[:, k], method=WorldModel.dynamics)
            latent = scale_gradient(latent, 0.5)
            prefix_logits, lstm = model.apply(params, latent, lstm, method=WorldModel.value_prefix)
            policy_logits, value_logits = model.apply(params, latent, method=WorldModel.predict)
            policy_list.append(policy_logits)
            value_list.append(value_logits)
            prefix_list.append(prefix_logits)
            latents.append(latent)
        policy_logits = jnp.stack(policy_list, 1)  # [B, K+1, A]
        if t.legal_policy_loss:  # see TrainConfig.legal_policy_loss
            policy_logits = legal_logits(policy_logits, rows.action_mask[:, : K + 1])
        value_logits = jnp.stack(value_list, 1)  # [B, K+1, 2V+1]
        prefix_logits = jnp.stack(prefix_list, 1)  # [B, K, 2R+1]

        def ce(logits, target):
            return -jnp.sum(target * jax.nn.log_softmax(logits), axis=-1)

        value_ce = ce(value_logits, scalar_to_categorical(targets.value, value_support))
        prefix_ce = ce(prefix_logits, scalar_to_categorical(targets.value_prefix, reward_support))
        policy_ce = ce(policy_logits, targets.policy)

        # SimSiam temporal consistency: predicted projection of the unrolled latent vs the
        # stop-gradient projection of the encoded real next observation.
        unrolled = jnp.stack(latents, 1)  # [B, K, *latent]
        prediction = model.apply(
            params,
            model.apply(params, _flatten2(unrolled), method=WorldModel.project),
            method=WorldModel.predict_projection,
        )
        real_next = model.apply(params, jax.tree.map(_flatten2, next_obs),
                                method=WorldModel.represent)
        target = jax.lax.stop_gradient(model.apply(params, real_next, method=WorldModel.project))

        def normalise(x):
            return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-5)

        cosine = jnp.sum(normalise(prediction) * normalise(target), axis=-1).reshape(batch, K)
        consistency = -cosine

        step_scale = loss_step_scale(K, t.loss_scale)
        per_sample = LossTerms(
            policy=jnp.sum(policy_ce * policy_weight * step_scale, axis=1),
            value=jnp.sum(value_ce * value_weight * step_scale, axis=1),
            value_prefix=jnp.sum(prefix_ce * prefix_weight * step_scale[1:], axis=1),
            consistency=jnp.sum(consistency * alive[:, 1:] * step_scale[1:], axis=1),
        )
        if t.entropy_weight > 0:
            # EfficientZero V2: minus the policy's entropy at the root and each unrolled step,
            # masked and scaled as the policy loss is
            per_sample = per_sample._replace(entropy=jnp.sum(
                negative_entropy(policy_logits) * policy_weight * step_scale, axis=1))
        terms = jax.tree.map(lambda x: jnp.mean(x * window.weight), per_sample)
        total = (
            t.policy_weight * terms.policy
            + t.value_weight * terms.value
            + t.value_prefix_weight * terms.value_prefix
            + t.consistency_weight * terms.consistency
        )
        if t.entropy_weight > 0:
            total = total + t.entropy_weight * terms.entropy
        root_value = categorical_to_scalar(value_list[0], value_support)
        return total, (terms, root_value)

    def prepare(train_state: TrainState, replay_state: replay_lib.ReplayState, keys, age_per_step):
        """Samples G batches (one per key, [G] keys) with the current priorities and builds
        their targets, reanalysing all G batches in one search. Returns windows and targets with
        a leading [G] axis."""
        G, B = keys.shape[0], t.batch_size
        sample_keys, reanalyse_keys = jax.vmap(jax.random.split, out_axes=1)(keys)
        beta = replay_lib.annealed_beta(config.replay, train_state.updates)
        windows = jax.vmap(lambda k: replay_lib.sample(
            replay_state, k, B, window_length(config), config.replay.alpha, beta,
            config.replay.replacement, before,
        ))(sample_keys)
        # `age` counts rows of one stream; all streams advance together, so real steps of age
        # are rows x streams.
        windows = windows._replace(age=windows.age * replay_state.num_streams)
        flat = parallel.constrain_batch(jax.tree.map(lambda x: x.reshape(G * B, *x.shape[2:]),
                                                     windows), mesh)
        reanalysed = (jnp.arange(G)[:, None] * B + jnp.arange(num_reanalysed)[None]).reshape(-1)
        targets = make_targets(train_state, flat, reanalyse_keys[0], age_per_step, reanalysed)
        targets = jax.tree.map(lambda x: x.reshape(G, B, *x.shape[1:]), targets)
        return windows, targets

    def apply_update(train_state: TrainState, replay_state: replay_lib.ReplayState, window,
                     targets: targets_lib.Targets, key=None):
        """One gradient update on a prepared batch, then its new priorities. `key` draws the
        augmentation of the loss's observations (required when augmenting, else unused)."""
        if augment_on and key is None:
            raise ValueError("apply_update: train.augment_shift / train.augment_intensity need a "
                             "key (apply_update(..., key))")
        window = parallel.constrain_batch(window, mesh)
        (total, (terms, root_value)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            train_state.params, window, targets, key if augment_on else None
        )
        grad_norm = optax.tree.norm(grads)
        updates, opt_state = optimizer.update(grads, train_state.opt_state, train_state.params)
        params = optax.apply_updates(train_state.params, updates)
        finite = jnp.isfinite(total) & jnp.isfinite(grad_norm)
        if t.nan_policy == "skip":
            params = jax.tree.map(lambda new, old: jnp.where(finite, new, old),
                                  params, train_state.params)
            opt_state = jax.tree.map(lambda new, old: jnp.where(finite, new, old),
                                     opt_state, train_state.opt_state)
        update_count = train_state.updates + 1
        refresh = (update_count % t.target_update_interval) == 0
        target_params = jax.tree.map(
            lambda online, target: jnp.where(refresh, online, target),
            params, train_state.target_params,
        )
        value_target0 = targets.value[:, 0]
        priority = jnp.abs(root_value - value_target0) + config.replay.priority_eps
        replay_state = replay_lib.update_priorities(
            replay_state, window.start, window.stream, jnp.where(finite, priority, 1.0)
        )
        new_state = TrainState(params, target_params, opt_state, update_count)
        metrics = {
            "loss/total": total,
            "loss/policy": terms.policy,
            "loss/value": terms.value,
            "loss/value_prefix": terms.value_prefix,
            "loss/consistency": terms.consistency,
            "grad_norm": grad_norm,
            "finite": finite,
            "value_target_mean": jnp.mean(value_target0),
            # share of the policy targets of this batch's live positions made by the current
            # target network (fresh search), the rest being older searches' (acting or a pass)
            "targets/fresh": jnp.sum(targets.fresh & targets.masks.alive) / jnp.maximum(
                jnp.sum(targets.masks.alive), 1),
        }
        if terms.entropy is not None:
            metrics["loss/entropy"] = terms.entropy
        return new_state, replay_state, metrics

    return TrainParts(prepare, apply_update, augment_on)


def make_train_many(model: WorldModel, config: Config, num_updates: int, mesh=None):
    """`num_updates` train steps in one `lax.scan`; metrics of all updates are returned.

    Updates go in groups of `train.reanalyse_batches`: each group's batches are sampled and
    reanalysed together, then applied one by one. With groups of 1 each update samples and
    reanalyses its own batch.
    """
    group = config.train.reanalyse_batches
    if num_updates % group:
        raise ValueError(
            f"train.reanalyse_batches={group} must divide the {num_updates} updates of one call"
        )
    parts = make_train_parts(model, config, mesh)

    def train_many(train_state, replay_state, key, age_per_step):
        def apply(carry, prepared):
            ts, rs, metrics = parts.apply_update(*carry, *prepared)
            return (ts, rs), metrics

        def body(carry, group_keys):
            windows, targets = parts.prepare(*carry, group_keys, age_per_step)
            if not parts.augmenting:
                return jax.lax.scan(apply, carry, (windows, targets))
            # a third key per update, beside the two `prepare` splits each into (sampling,
            # reanalysis), which stay as they are
            augment_keys = jax.vmap(lambda k: jax.random.split(k, 3)[2])(group_keys)
            return jax.lax.scan(apply, carry, (windows, targets, augment_keys))

        keys = jax.random.split(key, num_updates).reshape(num_updates // group, group)
        (train_state, replay_state), metrics = jax.lax.scan(body, (train_state, replay_state), keys)
        metrics = jax.tree.map(lambda x: x.reshape(num_updates, *x.shape[2:]), metrics)
        return train_state, replay_state, metrics

    return train_many
