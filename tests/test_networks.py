"""Network pieces against their reference definitions."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

import worlds
from dreamer import config as config_lib
from dreamer.networks import Conv3x3, LSTMState, WorldModel, latent_model, make_model


def _shifted_copies_dense(x, kernel, bias):
    """Conv3x3's definition, in float64 numpy: one Dense over the 9 shifted copies of the
    zero-padded input, concatenated shift-major ((i, j) row-major, then channel)."""
    x, kernel, bias = (np.asarray(a, np.float64) for a in (x, kernel, bias))
    _, height, width, _ = x.shape
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    patches = np.concatenate([padded[:, i:i + height, j:j + width, :]
                              for i in range(3) for j in range(3)], axis=-1)
    return patches @ kernel + bias


def test_conv3x3_equals_lax_conv_with_the_same_weights():
    """`Conv3x3` (one Dense over the 9 shifted copies of the input) is a 'SAME' 3x3 convolution,
    stride 1: with its Dense kernel read as a [3, 3, C_in, C_out] HWIO kernel (row-major over the
    shifts (i, j), then the input channel) it equals `lax.conv_general_dilated` plus the bias, at
    the border (zero padding) and inside. A rectangular 5 x 7 frame catches swapped H and W."""
    batch, height, width, c_in, c_out = 2, 5, 7, 3, 4
    x = jax.random.normal(jax.random.key(0), (batch, height, width, c_in))
    conv = Conv3x3(c_out)
    params = conv.init(jax.random.key(1), x)
    dense = params["params"]["Dense_0"]
    assert dense["kernel"].shape == (9 * c_in, c_out)
    # a non-zero bias (it initialises to zeros), so that it is checked too
    params = {"params": {"Dense_0": {
        "kernel": dense["kernel"], "bias": jax.random.normal(jax.random.key(2), (c_out,))}}}
    ours = jax.jit(conv.apply)(params, x)

    kernel = params["params"]["Dense_0"]["kernel"].reshape(3, 3, c_in, c_out)
    reference = jax.jit(lambda x, k, b: jax.lax.conv_general_dilated(
        x, k, window_strides=(1, 1), padding="SAME",
        dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=jax.lax.Precision.HIGHEST) + b)(
        x, kernel, params["params"]["Dense_0"]["bias"])
    assert ours.shape == reference.shape == (batch, height, width, c_out)
    # Both sum the same 27 float32 products per output, in different orders: each sum of terms
    # of size ~1 is then within a few ulps (2^-24 ~ 6e-8 relative) x 27 of the other, < 1e-5.
    np.testing.assert_allclose(np.asarray(ours), np.asarray(reference), rtol=0, atol=1e-5)
    # and its own definition, computed independently in float64 (the same bound: float32 sums)
    definition = _shifted_copies_dense(x, params["params"]["Dense_0"]["kernel"],
                                       params["params"]["Dense_0"]["bias"])
    np.testing.assert_allclose(np.asarray(ours), definition, rtol=0, atol=1e-5)
    # the comparison can fail: a kernel read with the shifts transposed (j, i) gives another
    # convolution, different by far more than the tolerance
    transposed = kernel.transpose(1, 0, 2, 3)
    other = jax.lax.conv_general_dilated(x, transposed, (1, 1), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
    assert float(jnp.abs(other + params["params"]["Dense_0"]["bias"] - reference).max()) > 0.1


def test_latent_model_is_the_world_models_methods():
    """`latent_model(model)`'s pure functions are `model.apply(params, ..., method=...)` of the
    four methods, bit for bit, with the model's supports and zero LSTM state. The value-prefix
    and policy heads initialise to zeros, so the check runs on random parameters."""
    cfg = config_lib.tiny()
    model = make_model(cfg.model, worlds.make("catch").spec)
    obs = jax.random.uniform(jax.random.key(0), (3, *worlds.make("catch").spec.observation_shape))
    params = model.init(jax.random.key(1), obs, jnp.zeros((3,), jnp.int32))
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(2), len(leaves))
    params = jax.tree.unflatten(tree, [jax.random.normal(k, x.shape) for x, k in
                                       zip(leaves, keys, strict=True)])
    fns = latent_model(model)
    action = jnp.array([0, 1, 2])
    lstm = LSTMState(*jax.random.normal(jax.random.key(3), (2, 3, cfg.model.lstm_hidden)))
    latent = model.apply(params, obs, method=WorldModel.represent)
    pairs = [
        (fns.represent(params, obs), latent),
        (fns.dynamics(params, latent, action),
         model.apply(params, latent, action, method=WorldModel.dynamics)),
        (fns.predict(params, latent), model.apply(params, latent, method=WorldModel.predict)),
        (fns.value_prefix(params, latent, lstm),
         model.apply(params, latent, lstm, method=WorldModel.value_prefix)),
    ]
    for ours, reference in pairs:
        for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(reference), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert float(jnp.abs(pairs[2][0][0]).max()) > 0  # the policy logits are not all zero
    assert (fns.value_support, fns.reward_support) == (cfg.model.value_support,
                                                       cfg.model.reward_support)
    zero = fns.initial_lstm(5)
    assert zero.cell.shape == zero.hidden.shape == (5, cfg.model.lstm_hidden)
    assert not np.any(np.asarray(zero.cell)) and not np.any(np.asarray(zero.hidden))


def _next_latents(cfg, spec, observation_shape, image):
    """Next latents of one random latent under each action, and the model's parameters."""
    model = WorldModel(config=cfg.model, num_actions=spec.num_actions, image=image)
    obs = jax.random.uniform(jax.random.key(0), (1, *observation_shape))
    params = jax.jit(model.init)(jax.random.key(1), obs, jnp.zeros((1,), jnp.int32))
    A = spec.num_actions
    latent = jax.jit(lambda p, o: model.apply(p, o, method=WorldModel.represent))(
        params, jnp.repeat(obs, A, axis=0))
    nxt = jax.jit(lambda p, z, a: model.apply(p, z, a, method=WorldModel.dynamics))(
        params, latent, jnp.arange(A))
    return params, latent, nxt


def test_action_embedding_shapes_and_distinct_actions():
    """model.action_embedding=D: the dynamics takes V2's learned D-wide embedding of a / A
    (Dense 1 -> D, LayerNorm, ReLU), as planes over conv latents (its LayerNorm over H x W x D,
    as V2's `LayerNorm([D, 6, 6])`) and as a vector for MLP latents; the next latent keeps the
    latent's shape and distinct actions give distinct next latents, on the conv (catch) and the
    MLP (cartpole). (The `atari` stem's latent is 6 x 6: test_agent's
    test_atari_network_downsamples_to_6x6; its embedding's LayerNorm is then over 6 x 6 x D.)"""
    D = 4
    catch, cartpole = worlds.make("catch").spec, worlds.make("cartpole").spec
    tiny = config_lib.override(config_lib.tiny(), [f"model.action_embedding={D}"])
    cases = [(tiny, catch, catch.observation_shape, True, (10, 5, D)),
             (tiny, cartpole, cartpole.observation_shape, False, (D,))]
    for cfg, spec, shape, image, norm_shape in cases:
        params, latent, nxt = _next_latents(cfg, spec, shape, image)
        embed = params["params"]["action_embed"]
        assert embed["Dense_0"]["kernel"].shape == (1, D)
        assert embed["LayerNorm_0"]["scale"].shape == norm_shape
        assert nxt.shape == latent.shape
        A = spec.num_actions
        for i in range(A):
            for j in range(i + 1, A):
                assert float(jnp.abs(nxt[i] - nxt[j]).max()) > 1e-4, (cfg.model.encoder, i, j)
    # off (0, every preset but atari100k-v2): no embedding, the one-hot planes as before
    params = jax.eval_shape(make_model(config_lib.tiny().model, catch).init, jax.random.key(1),
                            jnp.zeros((1, *catch.observation_shape)), jnp.zeros((1,), jnp.int32))
    assert "action_embed" not in params["params"]


def test_action_embedding_is_its_definition():
    """The embedding against its definition in numpy: relu(LayerNorm(w a / A + b)) over the D
    features (vector case), for every action."""
    from dreamer.networks import ActionEmbedding
    A, D = 5, 6
    module = ActionEmbedding(D, A)
    params = module.init(jax.random.key(0), jnp.zeros((1,), jnp.int32))
    params = jax.tree.map(lambda x: x + 0.3 * jax.random.normal(jax.random.key(2), x.shape), params)
    got = np.asarray(module.apply(params, jnp.arange(A)))
    p = jax.tree.map(np.asarray, params["params"])
    x = (np.arange(A) / A)[:, None] * p["Dense_0"]["kernel"] + p["Dense_0"]["bias"]
    norm = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-6)
    want = np.maximum(norm * p["LayerNorm_0"]["scale"] + p["LayerNorm_0"]["bias"], 0)
    # atol 1e-5: float32 (XLA's fused LayerNorm) against numpy's float64 reference
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert len({tuple(np.round(row, 5)) for row in got}) == A  # distinct actions, distinct rows


def test_conv_mlp_encoder_reads_the_frame_with_one_valid_conv_into_a_vector_latent():
    """`model.encoder=conv_mlp`: one 3x3 VALID convolution of `channels` over the frame (MinAtar's
    DQN network reads its frame so), ReLU, flattened into the MLP's Dense stem; the latent, the
    dynamics and the heads are the MLP's (vector latents). The first layer is the convolution
    of its definition (`lax.conv_general_dilated`), and vector worlds refuse it in one line."""
    import pytest

    cfg = config_lib.override(config_lib.minatar(), ["model.encoder=conv_mlp", "model.channels=16"])
    spec = worlds.make("minatar/breakout").spec
    model = make_model(cfg.model, spec)
    assert model.image
    obs = jax.random.bernoulli(jax.random.key(0), 0.2, (2, *spec.observation_shape))
    params = model.init(jax.random.key(1), obs.astype(jnp.float32), jnp.zeros((2,), jnp.int32))
    p = params["params"]
    C = spec.observation_shape[-1]
    assert p["conv_stem"]["kernel"].shape == (3, 3, C, 16)
    assert p["stem"]["kernel"].shape == (8 * 8 * 16, cfg.model.hidden)
    latent = model.apply(params, obs.astype(jnp.float32), method=WorldModel.represent)
    assert latent.shape == (2, cfg.model.latent_dim)
    nxt = model.apply(params, latent, jnp.array([0, 1]), method=WorldModel.dynamics)
    assert nxt.shape == latent.shape
    _, features = model.apply(params, obs.astype(jnp.float32), method=WorldModel.represent,
                              capture_intermediates=lambda mdl, _: mdl.name == "conv_stem",
                              mutable=["intermediates"])
    (got,) = features["intermediates"]["conv_stem"]["__call__"]
    expected = jax.lax.conv_general_dilated(
        obs.astype(jnp.float32), p["conv_stem"]["kernel"], (1, 1), "VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC")) + p["conv_stem"]["bias"]
    # float32 sums in another order (lax's convolution against the stem's): rounding only
    np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="model.encoder=conv_mlp needs image observations"):
        make_model(cfg.model, worlds.make("cartpole").spec)


def _gru_by_hand(params, x, h):
    """One GRU step (Cho et al. 2014, with the reset gate on the recurrent term as flax's
    `GRUCell` documents it), float64 numpy: r = s(W_ir x + b_ir + W_hr h), z = s(W_iz x + b_iz +
    W_hz h), n = tanh(W_in x + b_in + r (W_hn h + b_hn)), h' = (1 - z) n + z h."""
    p = {k: {n: np.asarray(v, np.float64) for n, v in d.items()} for k, d in params.items()}
    sigmoid = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731
    r = sigmoid(x @ p["ir"]["kernel"] + p["ir"]["bias"] + h @ p["hr"]["kernel"])
    z = sigmoid(x @ p["iz"]["kernel"] + p["iz"]["bias"] + h @ p["hz"]["kernel"])
    n = np.tanh(x @ p["in"]["kernel"] + p["in"]["bias"] + r * (h @ p["hn"]["kernel"] + p["hn"]["bias"]))
    return (1 - z) * n + z * h


def test_gru_memory_reads_each_observation_alone_then_in_order():
    """`model.memory=gru` on a world with `history=k`: each of the k observations joined in one
    observation is encoded alone (the encoder of one observation, so its stem is one frame wide),
    a GRU reads the k encodings oldest first, and its last state, beside the newest encoding,
    enters the latent. Rebuilt by hand for vectors (cartpole), tokens (text/coin) and images
    (catch, MLP encoder: a wrong split of the channel axis would mix frames), with distinct
    observations in every slot; reversing the slots changes the latent (the order is read)."""
    import pytest

    for name, encoder in (("cartpole", "auto"), ("text/coin", "auto"), ("catch", "mlp")):
        k = 3
        spec = worlds.make(name, history=k).spec
        assert spec.history == k
        cfg = config_lib.override(config_lib.tiny(), [
            "model.memory=gru", f"model.encoder={encoder}", f"world_options.history={k}"])
        model = make_model(cfg.model, spec)
        one = (*spec.observation_shape[:-1], spec.observation_shape[-1] // k)
        key = jax.random.key(3)
        if spec.observation_kind == "tokens":
            frames = jax.random.randint(key, (2, k, *one), 1, 500, jnp.int32)
        else:
            frames = jax.random.uniform(key, (2, k, *one), jnp.float32)
        joined = jnp.concatenate([frames[:, j] for j in range(k)], axis=-1)  # the wrapper's order
        params = model.init(jax.random.key(1), joined, jnp.zeros((2,), jnp.int32))
        p = params["params"]
        if spec.observation_kind != "tokens":
            assert p["stem"]["kernel"].shape[0] == int(np.prod(one))
        encoded = [np.asarray(model.apply(params, frames[:, j], method=WorldModel.encode), np.float64)
                   for j in range(k)]
        h = np.zeros((2, cfg.model.hidden))
        for j in range(k):
            h = _gru_by_hand(p["memory_cell"], encoded[j], h)
        got = model.apply(params, jnp.concatenate([frames[:, j] for j in range(k)], axis=-1),
                          method=WorldModel._remember)
        # float32 against float64: rounding only
        np.testing.assert_allclose(np.asarray(got), np.concatenate([encoded[-1], h], -1),
                                   rtol=1e-4, atol=1e-5)
        latent = model.apply(params, joined, method=WorldModel.represent)
        assert latent.shape == (2, cfg.model.latent_dim)
        backwards = jnp.concatenate([frames[:, j] for j in reversed(range(k))], axis=-1)
        assert not np.allclose(latent, model.apply(params, backwards, method=WorldModel.represent))

    gru = dataclasses.replace(config_lib.tiny().model, memory="gru")
    with pytest.raises(config_lib.ConfigError, match="set world_options.history=k with k >= 2"):
        make_model(gru, worlds.make("cartpole").spec)
    with pytest.raises(config_lib.ConfigError, match="use model.encoder=conv_mlp or mlp"):
        make_model(gru, worlds.make("catch", history=2).spec)
    with pytest.raises(config_lib.ConfigError, match="world_options.history=1: set"):
        config_lib.override(config_lib.tiny(), ["model.memory=gru"])
