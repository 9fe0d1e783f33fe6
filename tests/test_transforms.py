"""Scalar <-> categorical transforms against hand-worked values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dreamer import transforms


@pytest.mark.parametrize(
    "x, expected",
    [
        (0.0, 0.0),
        (3.0, 1.0 + 0.003),  # sqrt(4) - 1 + 0.001 * 3
        (-3.0, -1.003),
        (8.0, 2.0 + 0.008),  # sqrt(9) - 1 + 0.008
        (99.0, 9.0 + 0.099),  # sqrt(100) - 1 + 0.099
    ],
)
def test_h_hand_values(x, expected):
    np.testing.assert_allclose(transforms.h(jnp.float32(x)), expected, rtol=1e-6)


def test_h_inverse_inverts_h():
    x = jnp.array([-1000.0, -37.5, -1.0, -0.01, 0.0, 0.3, 2.0, 55.0, 3000.0])
    # float32: the inverse's sqrt(1 + 4 eps (|y| + 1 + eps)) - 1 cancels digits; measured round
    # trip errors 9.6e-5 at x = -1 (the tolerance there: 2e-4) and 1.5e-3 at x = -1000 (0.1)
    np.testing.assert_allclose(transforms.h_inverse(transforms.h(x)), x, rtol=1e-4, atol=1e-4)
    y = jnp.array([-20.0, -1.5, 0.0, 0.25, 7.0])
    np.testing.assert_allclose(transforms.h(transforms.h_inverse(y)), y, rtol=1e-4, atol=1e-4)


def test_two_hot_hand_values():
    # support 2 -> atoms [-2, -1, 0, 1, 2]; 0.25 splits 0.75 on atom 0 and 0.25 on atom 1.
    np.testing.assert_allclose(transforms.two_hot(jnp.float32(0.25), 2), [0, 0, 0.75, 0.25, 0])
    np.testing.assert_allclose(transforms.two_hot(jnp.float32(-1.5), 2), [0.5, 0.5, 0, 0, 0])
    np.testing.assert_allclose(transforms.two_hot(jnp.float32(2.0), 2), [0, 0, 0, 0, 1])
    np.testing.assert_allclose(transforms.two_hot(jnp.float32(9.0), 2), [0, 0, 0, 0, 1])  # clipped


def test_categorical_round_trip_within_support():
    x = jnp.array([-50.0, -3.0, 0.0, 0.7, 12.0, 80.0])
    probs = transforms.scalar_to_categorical(x, 10)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
    logits = jnp.log(jnp.maximum(probs, 1e-30))
    np.testing.assert_allclose(transforms.categorical_to_scalar(logits, 10), x, rtol=1e-3, atol=1e-3)


def test_transforms_jit_and_grad():
    f = jax.jit(lambda x: transforms.categorical_to_scalar(jnp.log(transforms.scalar_to_categorical(x, 5) + 1e-9), 5))
    assert np.isfinite(f(jnp.float32(3.0)))
    g = jax.grad(lambda x: transforms.h(x))(jnp.float32(3.0))
    np.testing.assert_allclose(g, 1 / (2 * 2.0) + 1e-3, rtol=1e-5)


def test_binned_support_places_its_bins_evenly_in_h_space():
    """EfficientZero V2's 51 bins over [-300, 300] (its DMC / Gym support): atoms from h(-300) to
    h(300) = sqrt(301) - 1 + 0.3 = 16.6494 in steps of 2 x 16.6494 / 50, the middle one 0."""
    support = transforms.BinnedSupport(300.0, 51)
    atoms = np.asarray(transforms.support_atoms(support))
    high = np.sqrt(301.0) - 1.0 + 0.3
    assert atoms.shape == (51,) and transforms.support_size(support) == 51
    np.testing.assert_allclose(atoms[[0, 25, 50]], [-high, 0.0, high], atol=1e-5)
    np.testing.assert_allclose(np.diff(atoms), 2 * high / 50, rtol=1e-5)
    assert transforms.support_size(300) == 601  # the int support: integer atoms -300..300
    np.testing.assert_array_equal(transforms.support_atoms(2), [-2, -1, 0, 1, 2])


def test_binned_two_hot_hand_values():
    """5 bins: y a quarter of a step past atom 2 puts 0.75 on atom 2 and 0.25 on atom 3; past
    either end it is clipped onto the end atom."""
    support = transforms.BinnedSupport(8.0, 5)  # h(8) = 2.008: atoms -2.008, -1.004, 0, ...
    step = support.step
    assert step == pytest.approx(1.004)
    np.testing.assert_allclose(transforms.two_hot_binned(jnp.float32(0.25 * step), support),
                               [0, 0, 0.75, 0.25, 0], atol=1e-6)
    np.testing.assert_allclose(transforms.two_hot_binned(jnp.float32(-1.5 * step), support),
                               [0.5, 0.5, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(transforms.two_hot_binned(jnp.float32(9.0), support),
                               [0, 0, 0, 0, 1], atol=1e-6)
    np.testing.assert_allclose(transforms.two_hot_binned(jnp.float32(-9.0), support),
                               [1, 0, 0, 0, 0], atol=1e-6)


def test_binned_categorical_round_trip_across_the_range():
    """scalar -> categorical -> scalar returns the scalar for values across [-300, 300], the
    ends included; beyond the range it returns the end."""
    support = transforms.BinnedSupport(300.0, 51)
    x = jnp.array([-300.0, -299.0, -123.4, -7.0, -1.0, -0.05, 0.0, 0.3, 2.0, 55.0, 250.0, 300.0])
    probs = transforms.scalar_to_categorical(x, support)
    assert probs.shape == (12, 51)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
    logits = jnp.log(jnp.maximum(probs, 1e-30))
    back = jax.jit(transforms.categorical_to_scalar, static_argnums=1)(logits, support)
    # float32 h^-1 (see test_h_inverse_inverts_h): within 1e-3 relative at |x| >= 1
    np.testing.assert_allclose(back, x, rtol=1e-3, atol=2e-3)
    clipped = transforms.categorical_to_scalar(
        jnp.log(jnp.maximum(transforms.scalar_to_categorical(jnp.array([-900.0, 1e4]), support),
                            1e-30)), support)
    np.testing.assert_allclose(clipped, [-300.0, 300.0], rtol=1e-3)
