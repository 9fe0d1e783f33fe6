"""EfficientZero's image augmentation (`dreamer.augment`): random shift (edge pad + per-sample
crop) and per-sample intensity, the identity when off, and the learner's option
(`train.augment_shift`, `train.augment_intensity`): it trains on an image world and is refused
on a vector world."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import worlds
from dreamer import augment as augment_lib
from dreamer import config as config_lib
from dreamer import learner
from dreamer import replay as replay_lib
from dreamer.bench import _random_rows
from dreamer.networks import make_model


def _images(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        return rng.integers(0, 256, shape).astype(np.uint8)
    return rng.normal(size=shape).astype(dtype)


def _crops(image, pad):
    """Every crop of the edge-padded image [..., H, W, C], keyed by its corner (dy, dx)."""
    h, w = image.shape[-3], image.shape[-2]
    widths = [(0, 0)] * image.ndim
    widths[-3] = widths[-2] = (pad, pad)
    padded = np.pad(image, widths, mode="edge")
    return {(dy, dx): padded[..., dy:dy + h, dx:dx + w, :]
            for dy in range(2 * pad + 1) for dx in range(2 * pad + 1)}


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
@pytest.mark.parametrize("shape", [(6, 12, 10, 3), (6, 4, 12, 10, 3)])
def test_shape_and_dtype_are_kept(dtype, shape):
    obs = _images(shape, dtype)
    out = jax.jit(augment_lib.augment, static_argnums=(2, 3))(jax.random.key(0), obs, 4, 0.05)
    assert out.shape == obs.shape and out.dtype == obs.dtype


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_off_is_exactly_the_identity(dtype):
    obs = jnp.asarray(_images((5, 12, 10, 3), dtype))
    assert augment_lib.augment(jax.random.key(0), obs, 0, 0.0) is obs
    out = jax.jit(augment_lib.augment, static_argnums=(2, 3))(jax.random.key(1), obs, 0, 0.0)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(obs))
    assert out.dtype == obs.dtype


def test_shift_is_a_per_sample_crop_of_the_edge_padded_image():
    """Each sample equals one crop of its own edge-padded image (numpy's `np.pad(mode="edge")`),
    the corners differ between samples and reach both ends of the 2 * pad + 1 offsets; a
    sample's unroll steps (axis 1) share its corner."""
    pad, B = 3, 64
    obs = _images((B, 2, 9, 8, 2), np.float32)  # random floats: one crop matches, no other
    out = np.asarray(augment_lib.augment(jax.random.key(2), obs, pad, 0.0))
    corners = []
    for b in range(B):
        found = [c for c, crop in _crops(obs[b], pad).items() if np.array_equal(crop, out[b])]
        assert len(found) == 1, f"sample {b} is not a crop of its padded image"
        corners.append(found[0])
    corners = np.array(corners)
    assert len({tuple(c) for c in corners}) > 10
    assert corners.min() == 0 and corners.max() == 2 * pad
    # the border repeats: a corner at an end shows padded (repeated) pixels
    b = int(np.flatnonzero(corners[:, 0] == 0)[0])
    np.testing.assert_array_equal(out[b, :, :pad + 1], np.broadcast_to(
        out[b, :, pad:pad + 1], out[b, :, :pad + 1].shape))


def test_intensity_is_one_bounded_factor_per_sample():
    scale, B = 0.05, 512
    obs = np.abs(_images((B, 3, 6, 5, 2), np.float32)) + 0.5
    out = np.asarray(augment_lib.augment(jax.random.key(3), obs, 0, scale))
    ratio = out / obs
    factor = ratio[:, 0, 0, 0, 0]
    np.testing.assert_allclose(ratio, np.broadcast_to(factor[:, None, None, None, None], ratio.shape),
                               rtol=1e-6)
    assert (factor >= 1 - 2 * scale - 1e-6).all() and (factor <= 1 + 2 * scale + 1e-6).all()
    assert len(np.unique(np.round(factor, 6))) > B // 2  # one draw per sample
    # N(0, 1) beyond +-2 has probability 4.6%: some factors sit on the clip bounds
    assert np.isclose(factor, 1 - 2 * scale).sum() > 0 and np.isclose(factor, 1 + 2 * scale).sum() > 0
    assert abs(np.log(factor).mean()) < 0.01


def test_intensity_on_uint8_rounds_and_clips():
    obs = np.full((256, 4, 4, 1), 250, np.uint8)
    obs[:, 0] = 100
    out = np.asarray(augment_lib.augment(jax.random.key(4), obs, 0, 0.05))
    assert out.dtype == np.uint8
    assert out[:, 0].min() >= 90 and out[:, 0].max() <= 110
    assert (out[:, 1:] == 255).any() and out.max() == 255  # bright pixels saturate
    factor = augment_lib.intensity_factors(jax.random.split(jax.random.key(4))[1], 256, 0.05)
    np.testing.assert_array_equal(out[:, 0, 0, 0], np.round(100 * np.asarray(factor)))


def test_keys_change_the_draw_and_a_key_repeats_it():
    obs = _images((8, 12, 10, 3), np.uint8)
    a, b, again = (np.asarray(augment_lib.augment(jax.random.key(k), obs, 4, 0.05))
                   for k in (5, 6, 5))
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, again)


def test_negative_values_and_non_images_are_refused():
    with pytest.raises(ValueError, match="must be >= 0"):
        augment_lib.augment(jax.random.key(0), _images((2, 4, 4, 1), np.float32), -1, 0.0)
    with pytest.raises(ValueError, match="needs images"):
        augment_lib.augment(jax.random.key(0), _images((2, 4), np.float32), 4, 0.0)
    for override in ("train.augment_shift=-1", "train.augment_intensity=-0.1"):
        with pytest.raises(config_lib.ConfigError, match=override.split("=")[0]):
            config_lib.override(config_lib.tiny(), ["world=catch", override])


# --- the learner's option ------------------------------------------------------------------

def _learner(world, *overrides, spec=None):
    cfg = config_lib.override(config_lib.tiny(), [f"world={world}", "train.batch_size=8",
                                                  *overrides])
    spec = spec or worlds.make(world).spec
    model = make_model(cfg.model, spec)
    key = jax.random.key(0)
    rows = _random_rows(key, 48, 2, spec)
    rstate = replay_lib.add(replay_lib.init(rows, 48), rows)
    ts = learner.init_train_state(model, cfg, key, np.asarray(rows.observation[0, 0]))
    return cfg, model, ts, rstate


ON = ("train.augment_shift=2", "train.augment_intensity=0.05")


def test_learner_trains_with_augmentation_on_uint8_images():
    """Two updates of tiny catch, its frames stored as uint8 as Atari's are, with EfficientZero's
    augmentation: finite losses, moved parameters."""
    spec = dataclasses.replace(worlds.make("catch").spec, observation_dtype="uint8")
    cfg, model, ts, rstate = _learner("catch", *ON, spec=spec)
    assert learner.augmenting(cfg)
    train = jax.jit(learner.make_train_many(model, cfg, 2))
    after, _, metrics = train(ts, rstate, jax.random.key(7), jnp.float32(1e9))
    assert np.isfinite(np.asarray(metrics["loss/total"])).all()
    assert np.asarray(metrics["finite"]).all()
    assert int(after.updates) == 2
    assert not all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in
                   zip(jax.tree.leaves(after.params), jax.tree.leaves(ts.params), strict=True))


def test_augmentation_changes_the_loss_not_the_targets():
    """One update by hand on tiny catch (float frames): the augmentation key changes the loss;
    `prepare` (sampling, reanalysis, targets) is the same with augmentation on and off, since
    EfficientZero augments only the observations the loss encodes."""
    cfg, model, ts, rstate = _learner("catch", *ON)
    parts = learner.make_train_parts(model, cfg)
    off_parts = learner.make_train_parts(model, config_lib.override(cfg, [
        "train.augment_shift=0", "train.augment_intensity=0"]))
    assert parts.augmenting and not off_parts.augmenting
    keys = jax.random.split(jax.random.key(1), 1)
    prepared = jax.jit(parts.prepare)(ts, rstate, keys, jnp.float32(1e9))
    off_prepared = jax.jit(off_parts.prepare)(ts, rstate, keys, jnp.float32(1e9))
    for a, b in zip(jax.tree.leaves(prepared), jax.tree.leaves(off_prepared), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    window, target = jax.tree.map(lambda x: x[0], prepared)
    apply = jax.jit(parts.apply_update)
    losses = [float(apply(ts, rstate, window, target, jax.random.key(k))[2]["loss/total"])
              for k in (10, 11)]
    off = float(jax.jit(off_parts.apply_update)(ts, rstate, window, target)[2]["loss/total"])
    assert np.isfinite(losses).all() and len({*losses, off}) == 3
    with pytest.raises(ValueError, match="need a key"):
        parts.apply_update(ts, rstate, window, target)


def test_learner_refuses_augmentation_on_a_vector_world():
    cfg, model, ts, rstate = _learner("cartpole", "train.augment_shift=4")
    with pytest.raises(config_lib.ConfigError, match=r"train.augment_shift .* set both to 0"):
        learner.make_train_many(model, cfg, 2)
    # model.encoder=mlp also takes images, so a vector world is caught when the loss is traced
    cfg, model, ts, rstate = _learner("cartpole", "train.augment_intensity=0.05",
                                      "model.encoder=mlp")
    parts = learner.make_train_parts(model, cfg)
    windows, targets = jax.eval_shape(parts.prepare, ts, rstate,
                                      jax.random.split(jax.random.key(1), 1), jnp.float32(1e9))
    window, target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype),
                                  (windows, targets))
    with pytest.raises(config_lib.ConfigError, match="observations are not"):
        jax.eval_shape(parts.apply_update, ts, rstate, window, target, jax.random.key(2))
