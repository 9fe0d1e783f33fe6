"""Scalar <-> categorical transforms (MuZero, Appendix F; Pohlen et al. 2018)."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp

EPSILON = 1e-3


def h(x: chex.Array, eps: float = EPSILON) -> chex.Array:
    """h(x) = sign(x) (sqrt(|x| + 1) - 1) + eps x, elementwise."""
    return jnp.sign(x) * (jnp.sqrt(jnp.abs(x) + 1.0) - 1.0) + eps * x


def h_inverse(y: chex.Array, eps: float = EPSILON) -> chex.Array:
    """The exact inverse of `h`:

    h^-1(y) = sign(y) (((sqrt(1 + 4 eps (|y| + 1 + eps)) - 1) / (2 eps))^2 - 1).
    """
    return jnp.sign(y) * (
        jnp.square((jnp.sqrt(1.0 + 4.0 * eps * (jnp.abs(y) + 1.0 + eps)) - 1.0) / (2.0 * eps)) - 1.0
    )


def two_hot(x: chex.Array, support: int) -> chex.Array:
    """Two-hot encoding of x over the integer atoms -support..support.

    x is clipped to the support; the mass is split between the two nearest atoms so that the
    expectation over the atoms equals x exactly.

    Args:
      x: [...] values in the (already h-transformed) space.
      support: S, giving 2S+1 atoms.

    Returns:
      [..., 2S+1] probabilities.
    """
    x = jnp.clip(x, -support, support)
    low = jnp.floor(x)
    upper_weight = x - low
    low_index = (low + support).astype(jnp.int32)
    high_index = jnp.minimum(low_index + 1, 2 * support)
    size = 2 * support + 1
    return jax.nn.one_hot(low_index, size) * (1.0 - upper_weight)[..., None] + jax.nn.one_hot(
        high_index, size
    ) * upper_weight[..., None]


def scalar_to_categorical(x: chex.Array, support: int) -> chex.Array:
    """[...] scalars -> [..., 2S+1] two-hot targets of h(x)."""
    return two_hot(h(x), support)


def categorical_to_scalar(logits: chex.Array, support: int) -> chex.Array:
    """[..., 2S+1] logits -> [...] scalars: h^-1 of the expected atom."""
    atoms = jnp.arange(-support, support + 1, dtype=jnp.float32)
    return h_inverse(jnp.sum(jax.nn.softmax(logits, axis=-1) * atoms, axis=-1))
