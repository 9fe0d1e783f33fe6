"""The EfficientZero world model in flax: representation, dynamics, value prefix, prediction,
and the SimSiam projection/predictor heads for temporal consistency.

Latents are min-max normalised per sample (MuZero Appendix G). Vector observations get MLPs;
image observations get residual conv stacks (the `atari` encoder downsamples 96x96 to 6x6 as in
EfficientZero); token observations (text) get a small 1-D convolutional encoder whose pooled
features enter the vector path. On small frames a 3x3 convolution is written as one matrix
multiply over the 9 shifted copies of its input, which XLA:CPU runs several times faster than a
generic convolution.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from dreamer.config import ConfigError, ModelConfig
from dreamer.transforms import BinnedSupport, Support, support_size


class LSTMState(NamedTuple):
    cell: jax.Array  # [B, lstm_hidden]
    hidden: jax.Array  # [B, lstm_hidden]


class Remembered(NamedTuple):
    """What a model with a recurrent memory (`model.memory="recurrent"`) reads at a step: the
    observation and the memory of the episode before it (zeros at the episode's start). The
    representation reads both; `WorldModel.remember` gives the memory after the observation, which
    the actor carries to the next step (reset to zeros where the episode ends) and the replay
    stores beside each row."""

    observation: jax.Array  # [B, *obs]
    memory: jax.Array  # [B, memory_size]


def memory_size(config: ModelConfig) -> int:
    """Width of the memory an actor carries per copy: `hidden` with `memory="recurrent"`, else 0
    (the model reads observations alone)."""
    return config.hidden if config.memory == "recurrent" else 0


def agent_input(observation, memory):
    """What the representation and the search read: the observation itself, or with a memory
    (not None) the pair `Remembered(observation, memory)`."""
    return observation if memory is None else Remembered(observation, memory)


def next_memory(memory, done):
    """The memory a copy carries to its next step: zeros where its episode ended (`done` [B]);
    None passes through (no memory)."""
    if memory is None:
        return None
    return jnp.where(jnp.asarray(done)[:, None], 0.0, memory)


def min_max_normalise(x: jax.Array) -> jax.Array:
    """Scales each sample's features to [0, 1]: (x - min) / (max - min), per leading index."""
    flat = x.reshape(x.shape[0], -1)
    low = flat.min(axis=1, keepdims=True)
    high = flat.max(axis=1, keepdims=True)
    scale = jnp.where(high - low < 1e-5, 1e-5, high - low)
    return ((flat - low) / scale).reshape(x.shape)


class Conv3x3(nn.Module):
    """'SAME' 3x3 convolution, stride 1, as one Dense over the 9 shifted copies of the input."""

    features: int

    @nn.compact
    def __call__(self, x):  # [B, H, W, C] -> [B, H, W, features]
        _, height, width, _ = x.shape
        padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        patches = jnp.concatenate(
            [padded[:, i : i + height, j : j + width, :] for i in range(3) for j in range(3)],
            axis=-1,
        )
        return nn.Dense(self.features)(patches)


class ConvResidualBlock(nn.Module):
    """x + conv(relu(norm(conv(relu(norm(x)))))) (pre-activation)."""

    features: int
    fast_conv: bool = True

    @nn.compact
    def __call__(self, x):
        conv = (lambda: Conv3x3(self.features)) if self.fast_conv else (
            lambda: nn.Conv(self.features, (3, 3), padding="SAME")
        )
        y = conv()(nn.relu(nn.LayerNorm()(x)))
        y = conv()(nn.relu(nn.LayerNorm()(y)))
        return x + y


TOKEN_BUCKETS = 4096
"""Rows of the token embedding table. Token ids are taken modulo this, so any vocabulary works
(the text worlds here use fewer than 100 words; larger vocabularies share rows)."""


class Conv1dWidth3(nn.Module):
    """'SAME' 1-D convolution of width 3 over [B, L, C], as one Dense over 3 shifted copies."""

    features: int

    @nn.compact
    def __call__(self, x):  # [B, L, C] -> [B, L, features]
        length = x.shape[1]
        padded = jnp.pad(x, ((0, 0), (1, 1), (0, 0)))
        shifted = jnp.concatenate([padded[:, i : i + length, :] for i in range(3)], axis=-1)
        return nn.Dense(self.features)(shifted)


class TokenEncoder(nn.Module):
    """[B, L] int token ids (0 pads) -> [B, out] features.

    Embedding plus learned positions, `num_layers` pre-norm residual width-3 convolutions (each
    token sees its neighbours, so "north ( visited )" and "door leads north" differ), then masked
    max- and mean-pooling over the tokens and a Dense layer.

    Attributes:
      features: embedding and convolution width.
      out: output width.
      num_layers: residual convolution layers.
    """

    features: int
    out: int
    num_layers: int = 3

    @nn.compact
    def __call__(self, tokens):
        tokens = tokens.astype(jnp.int32)
        present = (tokens != 0)[..., None]  # [B, L, 1]
        x = nn.Embed(TOKEN_BUCKETS, self.features)(tokens % TOKEN_BUCKETS)
        x = x + self.param("positions", nn.initializers.normal(0.02), (tokens.shape[1], self.features))
        x = jnp.where(present, x, 0.0)
        for _ in range(self.num_layers):
            y = Conv1dWidth3(self.features)(nn.relu(nn.LayerNorm()(x)))
            x = jnp.where(present, x + y, 0.0)
        count = present.sum(axis=1)  # [B, 1]
        mean = x.sum(axis=1) / jnp.maximum(count, 1)
        top = jnp.where(count > 0, jnp.where(present, x, -jnp.inf).max(axis=1), 0.0)
        return nn.Dense(self.out)(jnp.concatenate([top, mean], axis=-1))


class MLPResidualBlock(nn.Module):
    features: int
    hidden: int

    @nn.compact
    def __call__(self, x):
        y = nn.Dense(self.hidden)(nn.relu(nn.LayerNorm()(x)))
        y = nn.Dense(self.features)(nn.relu(nn.LayerNorm()(y)))
        return x + y


class AtariDownsample(nn.Module):
    """EfficientZero's Atari stem: 96x96 -> 48 -> 24 -> 12 -> 6 with residual blocks."""

    channels: int

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(self.channels // 2, (3, 3), strides=2, padding="SAME")(x)
        x = ConvResidualBlock(self.channels // 2, fast_conv=False)(nn.relu(x))
        x = nn.Conv(self.channels, (3, 3), strides=2, padding="SAME")(x)
        x = ConvResidualBlock(self.channels, fast_conv=False)(nn.relu(x))
        x = nn.avg_pool(x, (3, 3), strides=(2, 2), padding="SAME")
        x = ConvResidualBlock(self.channels, fast_conv=False)(x)
        return nn.avg_pool(x, (3, 3), strides=(2, 2), padding="SAME")


def model_supports(config: ModelConfig) -> tuple[Support, Support]:
    """The value and value-prefix supports of a model config (`dreamer.transforms`): the ints
    `value_support` / `reward_support` (integer atoms of h), or with `support_bins` N > 0 a
    `BinnedSupport` of N atoms over [h(-S), h(S)] for each."""
    if config.support_bins > 0:
        return (BinnedSupport(float(config.value_support), config.support_bins),
                BinnedSupport(float(config.reward_support), config.support_bins))
    return config.value_support, config.reward_support


def _uniform(scale: float):
    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -scale, scale)

    return init


class ActionEmbedding(nn.Module):
    """EfficientZero V2's learned action embedding for the dynamics: the action index scaled to
    a / A, a linear map 1 -> `features` (a 1x1 convolution over a constant plane in V2), a
    LayerNorm and a ReLU. Called with `spatial` = (H, W) (conv latents) the embedding is
    broadcast to [B, H, W, features] and normalised over all of (H, W, features) with a
    per-element scale and bias, as V2's `nn.LayerNorm([D, 6, 6])`; without, it is [B, features].

    The weight and bias start uniform in [-1, 1] (PyTorch's default for a fan-in of 1): with a
    zero bias every action a > 0 would give the same embedding after the LayerNorm, which is
    scale-invariant."""

    features: int
    num_actions: int

    @nn.compact
    def __call__(self, action, spatial: tuple[int, int] | None = None):  # [B] int
        scalar = (action.astype(jnp.float32) / self.num_actions)[:, None]
        x = nn.Dense(self.features, kernel_init=_uniform(1.0), bias_init=_uniform(1.0))(scalar)
        if spatial is None:
            return nn.relu(nn.LayerNorm()(x))
        height, width = spatial
        x = jnp.broadcast_to(x[:, None, None, :], (x.shape[0], height, width, self.features))
        axes = (-3, -2, -1)
        return nn.relu(nn.LayerNorm(reduction_axes=axes, feature_axes=axes)(x))


def _as_float(observation: jax.Array) -> jax.Array:
    """Observations as float32; integer frames (uint8 pixels) scaled to [0, 1]."""
    x = observation.astype(jnp.float32)
    return x / 255.0 if jnp.issubdtype(observation.dtype, jnp.integer) else x


class WorldModel(nn.Module):
    """EfficientZero's networks; call the methods with `model.apply(params, ..., method=...)`.

    Attributes:
      config: network sizes.
      num_actions: size of the action set.
      image: observations are [H, W, C] images (else flat vectors).
      tokens: observations are [L] token ids (text); they get a `TokenEncoder`.
      history: observations joined per observation along the last axis (`WorldSpec.history`);
        with `config.memory="gru"` each is encoded alone and a GRU reads them in order.
    """

    config: ModelConfig
    num_actions: int
    image: bool
    tokens: bool = False
    history: int = 1

    def setup(self):
        c = self.config
        # conv latents (and conv dynamics) for images, but with "mlp" (the flattened frame) and
        # "conv_mlp" (a conv stem over the frame, flattened into a vector latent)
        self.conv = self.image and c.encoder not in ("mlp", "conv_mlp")
        fast = c.encoder != "atari"
        if self.conv:
            if c.encoder == "atari":
                self.stem = AtariDownsample(c.channels)
            else:
                self.stem = Conv3x3(c.channels)
            self.repr_blocks = [ConvResidualBlock(c.channels, fast) for _ in range(c.num_blocks)]
            self.dyn_in = Conv3x3(c.channels) if fast else nn.Conv(c.channels, (3, 3), padding="SAME")
            self.dyn_blocks = [ConvResidualBlock(c.channels, fast) for _ in range(c.num_blocks)]
            self.head_reduce = nn.Dense(16)  # 1x1 conv before flattening into the heads
        else:
            if self.image:  # conv_mlp
                self.conv_stem = nn.Conv(c.channels, (3, 3), padding="VALID")
            self.stem = TokenEncoder(c.channels, c.hidden) if self.tokens else nn.Dense(c.hidden)
            self.repr_out = nn.Dense(c.latent_dim)
            self.repr_blocks = [MLPResidualBlock(c.latent_dim, c.hidden) for _ in range(c.num_blocks)]
            self.dyn_in = nn.Dense(c.latent_dim)
            self.dyn_blocks = [MLPResidualBlock(c.latent_dim, c.hidden) for _ in range(c.num_blocks)]
            if c.memory in ("gru", "recurrent"):
                self.memory_cell = nn.GRUCell(c.hidden)
        if c.action_embedding > 0:
            self.action_embed = ActionEmbedding(c.action_embedding, self.num_actions)
        value_size, reward_size = (support_size(x) for x in model_supports(c))
        self.lstm_in = nn.Dense(c.lstm_hidden)
        self.lstm = nn.OptimizedLSTMCell(c.lstm_hidden)
        self.prefix_head = [nn.LayerNorm(), nn.Dense(c.head_hidden),
                            nn.Dense(reward_size, kernel_init=nn.initializers.zeros)]
        self.value_head = [nn.Dense(c.head_hidden),
                           nn.Dense(value_size, kernel_init=nn.initializers.zeros)]
        self.policy_head = [nn.Dense(c.head_hidden),
                            nn.Dense(self.num_actions, kernel_init=nn.initializers.zeros)]
        self.projection = [nn.Dense(c.projection_dim), nn.LayerNorm(), nn.Dense(c.projection_dim),
                           nn.LayerNorm(), nn.Dense(c.projection_dim)]
        self.predictor = [nn.Dense(c.projection_dim // 2), nn.LayerNorm(),
                          nn.Dense(c.projection_dim)]

    # --- pieces -------------------------------------------------------------------------------
    def _flat_features(self, latent):
        if self.conv:
            latent = nn.relu(self.head_reduce(latent))
        return latent.reshape(latent.shape[0], -1)

    def encode(self, observation: jax.Array) -> jax.Array:
        """[N, *obs] -> [N, hidden]: a vector latent's encoder, up to the latent's input layer
        (what the memories' GRU reads of an observation)."""
        if self.tokens:
            return nn.relu(self.stem(observation))
        x = _as_float(observation)
        if self.image:  # conv_mlp: one 3x3 convolution before flattening
            x = nn.relu(self.conv_stem(x))
        return nn.relu(self.stem(x.reshape(x.shape[0], -1)))

    def _remember(self, observation: jax.Array) -> jax.Array:
        """[B, *obs] with k observations joined on the last axis -> [B, 2*hidden]: each of the
        k encoded alone, a GRU over the k encodings oldest first, and its last state beside the
        newest observation's encoding."""
        k, batch = self.history, observation.shape[0]
        width = observation.shape[-1] // k
        slots = observation.reshape(*observation.shape[:-1], k, width)
        slots = jnp.moveaxis(slots, -2, 1).reshape(batch * k, *observation.shape[1:-1], width)
        encoded = self.encode(slots).reshape(batch, k, -1)  # [B, k, hidden]
        state = jnp.zeros((batch, self.config.hidden), encoded.dtype)
        for j in range(k):
            state, _ = self.memory_cell(state, encoded[:, j])
        return jnp.concatenate([encoded[:, -1], state], axis=-1)

    def _recur(self, remembered: Remembered) -> tuple[jax.Array, jax.Array]:
        """-> (the observation's encoding [B, hidden], the memory after it [B, hidden]): one GRU
        step from the memory before the observation over its encoding."""
        encoded = self.encode(remembered.observation)
        return encoded, self.recur(encoded, remembered.memory)

    def recur(self, encoded: jax.Array, memory: jax.Array) -> jax.Array:
        """([B, hidden] encoding, [B, hidden] memory before it) -> [B, hidden] the memory after:
        one GRU step (`memory="recurrent"`)."""
        after, _ = self.memory_cell(memory.astype(encoded.dtype), encoded)
        return after

    def remember(self, remembered: Remembered) -> jax.Array:
        """`Remembered` [B] -> [B, hidden]: the memory after reading the observation (a model
        with `memory="recurrent"`): `recur(encode(observation), memory)`."""
        return self._recur(remembered)[1]

    def represent(self, observation) -> jax.Array:
        """[B, *obs] (with `memory="recurrent"`: a `Remembered`) -> [B, *latent] min-max
        normalised latent state."""
        if self.config.memory == "recurrent":
            if not isinstance(observation, Remembered):
                raise TypeError("a model with model.memory=recurrent reads Remembered(observation, "
                                "memory), not an observation alone (`networks.agent_input`)")
            encoded, memory = self._recur(observation)
            x = self.repr_out(jnp.concatenate([encoded, memory], axis=-1))
        elif self.conv:
            x = self.stem(_as_float(observation))
        elif self.config.memory == "gru":
            x = self.repr_out(self._remember(observation))
        else:
            x = self.repr_out(self.encode(observation))
        for block in self.repr_blocks:
            x = block(x)
        return min_max_normalise(x)

    def dynamics(self, latent: jax.Array, action: jax.Array) -> jax.Array:
        """([B, *latent], [B] int) -> [B, *latent] next latent (residual, min-max normalised).

        The action enters as a one-hot vector (as planes for conv latents), or with
        `model.action_embedding` D > 0 as V2's learned D-wide embedding (`ActionEmbedding`)."""
        if self.config.action_embedding > 0:
            code = self.action_embed(action, latent.shape[1:3] if self.conv else None)
        else:
            code = jax.nn.one_hot(action, self.num_actions, dtype=latent.dtype)
            if self.conv:  # as planes
                code = jnp.broadcast_to(code[:, None, None, :], (*latent.shape[:3], self.num_actions))
        x = latent + self.dyn_in(jnp.concatenate([latent, code], axis=-1))
        for block in self.dyn_blocks:
            x = block(x)
        return min_max_normalise(x)

    def value_prefix(self, latent: jax.Array, lstm_state: LSTMState) -> tuple[jax.Array, LSTMState]:
        """One LSTM step over a new latent: ([B, *latent], state) -> ([B, 2R+1] logits, state)
        (with `model.support_bins` N: [B, N] logits)."""
        x = nn.relu(self.lstm_in(self._flat_features(latent)))
        (cell, hidden), out = self.lstm((lstm_state.cell, lstm_state.hidden), x)
        norm, hidden_layer, logits = self.prefix_head
        y = logits(nn.relu(hidden_layer(nn.relu(norm(out)))))
        return y, LSTMState(cell, hidden)

    def predict(self, latent: jax.Array) -> tuple[jax.Array, jax.Array]:
        """[B, *latent] -> ([B, A] policy logits, [B, 2V+1] value logits) (with
        `model.support_bins` N: [B, N] value logits)."""
        x = self._flat_features(latent)
        policy = self.policy_head[1](nn.relu(self.policy_head[0](x)))
        value = self.value_head[1](nn.relu(self.value_head[0](x)))
        return policy, value

    def project(self, latent: jax.Array) -> jax.Array:
        """[B, *latent] -> [B, P]: SimSiam projection of a latent state."""
        x = latent.reshape(latent.shape[0], -1)
        for i, layer in enumerate(self.projection):
            x = layer(x)
            if i in (1, 3):
                x = nn.relu(x)
        return x

    def predict_projection(self, projection: jax.Array) -> jax.Array:
        """[B, P] -> [B, P]: SimSiam predictor head (applied on the unrolled branch only)."""
        x = self.predictor[0](projection)
        x = nn.relu(self.predictor[1](x))
        return self.predictor[2](x)

    def initial_lstm_state(self, batch: int) -> LSTMState:
        zeros = jnp.zeros((batch, self.config.lstm_hidden), jnp.float32)
        return LSTMState(zeros, zeros)

    def __call__(self, observation, action):
        """Touches every parameter once (used by `init`)."""
        latent = self.represent(observation)
        policy, value = self.predict(latent)
        nxt = self.dynamics(latent, action)
        batch = action.shape[0]
        prefix, _ = self.value_prefix(nxt, self.initial_lstm_state(batch))
        projection = self.predict_projection(self.project(nxt))
        return policy, value, prefix, projection


def make_model(config: ModelConfig, spec) -> WorldModel:
    """Builds the model for a world spec (`worlds.WorldSpec`): token observations get a
    `TokenEncoder` (any `model.encoder` but "conv"/"atari"), images a conv stack, vectors an MLP.
    A model that cannot read the world raises `ConfigError`, one line naming the fix."""
    history = spec.history
    if config.memory == "gru" and history < 2:
        raise ConfigError(f"model.memory=gru reads a history, and {spec.name} shows one "
                          "observation: set world_options.history=k with k >= 2 (e.g. 8)")
    if spec.observation_kind == "tokens":
        if config.encoder in ("conv", "conv_mlp", "atari"):
            raise ConfigError(
                f"model.encoder={config.encoder} needs image observations; {spec.name} gives "
                "tokens (use model.encoder=auto)"
            )
        return WorldModel(config=config, num_actions=spec.num_actions, image=False, tokens=True,
                          history=history)
    image = spec.observation_kind == "image" and config.encoder != "mlp"
    if config.encoder in ("conv", "conv_mlp") and spec.observation_kind != "image":
        raise ConfigError(f"model.encoder={config.encoder} needs image observations; {spec.name} "
                          "gives vectors")
    if config.memory in ("gru", "recurrent") and image and config.encoder != "conv_mlp":
        raise ConfigError(f"model.memory={config.memory} needs a vector latent, and "
                          f"{spec.name}'s frames get conv latents with "
                          f"model.encoder={config.encoder}: use model.encoder=conv_mlp or mlp")
    return WorldModel(config=config, num_actions=spec.num_actions, image=image, history=history)


@dataclasses.dataclass(frozen=True)
class LatentModel:
    """The latent model search plans with, as pure functions of (params, ...): the seam between a
    network and the search, so the search needs no flax module (and a test can hand it a bandit
    written as plain functions). Build it from a `WorldModel` with `latent_model`.

    Attributes:
      represent: (params, observation [B, *obs]) -> latent [B, *latent].
      dynamics: (params, latent [B, *latent], action [B] int32) -> next latent [B, *latent].
      predict: (params, latent [B, *latent]) -> (policy logits [B, A], value logits [B, 2V+1]).
      value_prefix: (params, latent [B, *latent], LSTMState) -> (value-prefix logits
        [B, 2R+1], LSTMState): one LSTM step over a new latent.
      initial_lstm: (batch) -> the zero LSTMState, each [batch, lstm_hidden].
      value_support: the value logits' support (`transforms.categorical_to_scalar`): an int V
        (atoms -V..V of h) or a `transforms.BinnedSupport` (`model_supports`).
      reward_support: the same for the value-prefix logits.
    """

    represent: Callable
    dynamics: Callable
    predict: Callable
    value_prefix: Callable
    initial_lstm: Callable
    value_support: Support
    reward_support: Support


def latent_model(model: WorldModel) -> LatentModel:
    """`model`'s methods as a LatentModel: each is `model.apply(params, ..., method=...)`."""
    value_support, reward_support = model_supports(model.config)
    return LatentModel(
        represent=functools.partial(model.apply, method=WorldModel.represent),
        dynamics=functools.partial(model.apply, method=WorldModel.dynamics),
        predict=functools.partial(model.apply, method=WorldModel.predict),
        value_prefix=functools.partial(model.apply, method=WorldModel.value_prefix),
        initial_lstm=model.initial_lstm_state,
        value_support=value_support,
        reward_support=reward_support,
    )
