"""Image augmentation for the learner's encoder inputs: EfficientZero's random shift and
intensity, as one pure, jittable function.

What EfficientZero (V1) does, from github.com/YeWR/EfficientZero at commit 468bb03 (2022-08-04):

- It is on by default on Atari: `main.py` declares `--use_augmentation` with `default=True` and
  `--augmentation` with default `['shift', 'intensity']`; `core/config.py` (`set_config`) keeps
  it only when the consistency loss is on (`consistency_coeff > 0`).
- `core/dataset.py`, class `Transforms` (credited there to SPR, github.com/mila-iqia/spr), with
  `shift_delta=4`: "shift" is `nn.ReplicationPad2d(4)` (each border pixel repeated 4 times
  outwards) followed by kornia's `RandomCrop` back to the original 96x96. kornia draws the crop
  corner per sample (its default `same_on_batch=False`), uniformly over the 2*4 + 1 = 9 offsets
  of each axis. "intensity" (class `Intensity`, `scale=0.05`) multiplies each sample by
  `1 + 0.05 * clamp(r, -2, 2)`, one standard normal `r` per sample (a [B, 1, 1, 1] draw), so
  by a factor in [0.9, 1.1]; nothing clips the result. The two run in that order, shift then
  intensity. `Transforms.transform` flattens only the leading axes, so one draw covers all the
  channels of a sample: every frame of its stack gets the same shift and intensity.
- `core/train.py`, `update_weights`: the batch's frames are scaled to [0, 1] floats (`/ 255.0`)
  first, then two tensors are augmented, each by its own `config.transform` call, hence with
  independent draws: `obs_batch`, the initial stacked observation the representation encodes
  for the unroll's root, and `obs_target_batch`, the frames of all K later stacked
  observations (one tensor, sliced per unroll step afterwards), whose encodings are the
  consistency loss's targets. So the K targets of a sample share one draw, and it differs from
  the root's.
- Nothing else is augmented: acting (`core/selfplay_worker.py`), evaluation (`core/test.py`) and
  the reanalysis that makes value and policy targets (`core/reanalyze_worker.py`) feed the
  network `obs / 255.0` untransformed.

Here observations are [B, ..., H, W, C] (channels last, as `dreamer.networks` and the worlds
lay them out), with one draw per index of the leading axis shared by any axes between it and
the image (the K unroll steps). Shift and intensity act on the raw array, whose dtype is kept,
so the network's own normalisation (uint8 / 255 in `WorldModel.represent`) still applies after.
One departure follows from that for integer images (Atari's uint8): the scaled pixels are
rounded and clipped to the dtype's range, so a pixel above 255 / 1.1 saturates where
EfficientZero's unclipped float would exceed 1.0. Float images (MinAtar, catch) are scaled
unclipped, as in EfficientZero.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def random_shift(key, obs: jax.Array, pad: int) -> jax.Array:
    """Pads the two image axes of each sample by `pad` pixels, repeating the border pixels, and
    crops back to the original size at a random corner, drawn per sample (index of axis 0) over
    the 2 * pad + 1 offsets of each axis.

    Args:
      key: PRNG key.
      obs: [B, ..., H, W, C] images of any dtype.
      pad: pixels of padding on each side; 0 returns `obs` itself.

    Returns:
      [B, ..., H, W, C], the dtype of `obs`.
    """
    if pad == 0:
        return obs
    height, width = obs.shape[-3], obs.shape[-2]
    widths = [(0, 0)] * obs.ndim
    widths[-3] = widths[-2] = (pad, pad)
    padded = jnp.pad(obs, widths, mode="edge")
    corners = jax.random.randint(key, (obs.shape[0], 2), 0, 2 * pad + 1)

    def crop(image, corner):  # image: [..., H + 2 pad, W + 2 pad, C]
        start = (0,) * (image.ndim - 3) + (corner[0], corner[1], 0)
        return jax.lax.dynamic_slice(image, start, (*image.shape[:-3], height, width,
                                                    image.shape[-1]))

    return jax.vmap(crop)(padded, corners)


def intensity_factors(key, batch: int, scale: float) -> jax.Array:
    """[batch] float32 factors 1 + scale * clip(N(0, 1), -2, 2), one per sample."""
    noise = jnp.clip(jax.random.normal(key, (batch,), jnp.float32), -2.0, 2.0)
    return 1.0 + scale * noise


def random_intensity(key, obs: jax.Array, scale: float) -> jax.Array:
    """Multiplies each sample (index of axis 0) by its own `intensity_factors` factor. Integer
    images are rounded and clipped to their dtype's range; float images are not clipped.
    `scale` 0 returns `obs` itself."""
    if scale == 0:
        return obs
    factor = intensity_factors(key, obs.shape[0], scale)
    factor = factor.reshape(-1, *(1,) * (obs.ndim - 1))
    scaled = obs.astype(jnp.float32) * factor
    if jnp.issubdtype(obs.dtype, jnp.integer):
        info = jnp.iinfo(obs.dtype)
        scaled = jnp.clip(jnp.round(scaled), info.min, info.max)
    return scaled.astype(obs.dtype)


def augment(key, obs: jax.Array, shift: int, intensity: float) -> jax.Array:
    """EfficientZero's "shift" then "intensity" augmentation of a batch of images.

    Args:
      key: PRNG key (split here into the shift's and the intensity's).
      obs: [B, ..., H, W, C] images (channels last, any dtype); each index of axis 0 gets its
        own draw, shared by the axes between it and the image (e.g. the unroll steps).
      shift: pixels of edge padding of the random crop (EfficientZero on Atari: 4); 0 = none.
      intensity: scale of the per-sample intensity factor (EfficientZero: 0.05); 0 = none.

    Returns:
      The augmented batch, shape and dtype of `obs`; `obs` itself when both are 0.
    """
    if shift < 0 or intensity < 0:
        raise ValueError(f"augment: shift and intensity must be >= 0, got {shift}, {intensity}")
    if shift == 0 and intensity == 0:
        return obs
    if obs.ndim < 4:
        raise ValueError(
            f"augment needs images [B, ..., H, W, C]; got an array of shape {obs.shape}")
    key_shift, key_intensity = jax.random.split(key)
    obs = random_shift(key_shift, obs, shift)
    return random_intensity(key_intensity, obs, intensity)
