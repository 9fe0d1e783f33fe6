"""Scalar <-> categorical transforms (MuZero, Appendix F; Pohlen et al. 2018).

A categorical support is either an int S, the integer atoms -S..S of h(x) (2S+1 of them; MuZero,
EfficientZero V1, and V2 on Atari), or a `BinnedSupport`: N atoms evenly spaced over
[h(-bound), h(bound)] (EfficientZero V2's `bins` over `range`, which its code uses for DMC and
Gym). Either way the targets are two-hot over the atoms in h-space and a prediction is h^-1 of
the expected atom.
"""

from __future__ import annotations

import dataclasses
import math

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
    return _split(low + support, x - low, 2 * support + 1)


def _split(low_index: chex.Array, upper_weight: chex.Array, size: int) -> chex.Array:
    """[..., size] probabilities: 1 - upper_weight on atom low_index, upper_weight on the next
    one (the last atom takes both where low_index is the last)."""
    low_index = low_index.astype(jnp.int32)
    high_index = jnp.minimum(low_index + 1, size - 1)
    return jax.nn.one_hot(low_index, size) * (1.0 - upper_weight)[..., None] + jax.nn.one_hot(
        high_index, size
    ) * upper_weight[..., None]


@dataclasses.dataclass(frozen=True)
class BinnedSupport:
    """`bins` atoms evenly spaced over [h(-bound), h(bound)] (both ends included): scalars in
    [-bound, bound] are represented exactly, larger ones are clipped. Hashable, so it can be a
    static part of a jitted function.

    Attributes:
      bound: the largest |scalar| represented (EfficientZero V2's `range: [-bound, bound]`).
      bins: number of atoms (V2: `bins`), >= 2.
    """

    bound: float
    bins: int

    @property
    def high(self) -> float:
        """h(bound), the last atom (in float64; the atoms are cast to float32)."""
        return math.copysign(math.sqrt(abs(self.bound) + 1.0) - 1.0, self.bound) + (
            EPSILON * self.bound)

    @property
    def step(self) -> float:
        """The spacing of the atoms in h-space: 2 h(bound) / (bins - 1)."""
        return 2.0 * self.high / (self.bins - 1)

    def atoms(self) -> jax.Array:
        """[bins] float32 atoms in h-space, -h(bound) .. h(bound)."""
        return jnp.asarray(-self.high + self.step * jnp.arange(self.bins, dtype=jnp.float32),
                           jnp.float32)


Support = int | BinnedSupport


def support_size(support: Support) -> int:
    """Number of atoms: 2S+1 for an int S, else the bins."""
    return support.bins if isinstance(support, BinnedSupport) else 2 * support + 1


def support_atoms(support: Support) -> jax.Array:
    """[size] float32 atoms in h-space."""
    if isinstance(support, BinnedSupport):
        return support.atoms()
    return jnp.arange(-support, support + 1, dtype=jnp.float32)


def two_hot_binned(y: chex.Array, support: BinnedSupport) -> chex.Array:
    """Two-hot encoding of y (already in h-space) over a `BinnedSupport`'s atoms: y is clipped
    to [-h(bound), h(bound)] and its mass split between the two nearest atoms so that the
    expected atom is y. Returns [..., bins] probabilities."""
    position = jnp.clip((y + support.high) / support.step, 0.0, support.bins - 1.0)
    low = jnp.floor(position)
    return _split(low, position - low, support.bins)


def scalar_to_categorical(x: chex.Array, support: Support) -> chex.Array:
    """[...] scalars -> [..., size] two-hot targets of h(x) (size: `support_size`)."""
    if isinstance(support, BinnedSupport):
        return two_hot_binned(h(x), support)
    return two_hot(h(x), support)


def categorical_to_scalar(logits: chex.Array, support: Support) -> chex.Array:
    """[..., size] logits -> [...] scalars: h^-1 of the expected atom."""
    atoms = support_atoms(support)
    return h_inverse(jnp.sum(jax.nn.softmax(logits, axis=-1) * atoms, axis=-1))
