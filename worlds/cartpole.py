"""CartPole with gymnasium CartPole-v1's dynamics (Euler integration), termination and limit."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from worlds.base import JaxWorld, WorldSpec

GRAVITY = 9.8
MASS_CART = 1.0
MASS_POLE = 0.1
TOTAL_MASS = MASS_CART + MASS_POLE
HALF_POLE_LENGTH = 0.5
POLE_MASS_LENGTH = MASS_POLE * HALF_POLE_LENGTH
FORCE_MAG = 10.0
TAU = 0.02
THETA_LIMIT = 12 * 2 * math.pi / 360
X_LIMIT = 2.4


def cartpole_dynamics(state: jax.Array, action: jax.Array) -> jax.Array:
    """One Euler step of the cart-pole ODE, as gymnasium's CartPole-v1 (`kinematics_integrator='euler'`).

    Args:
      state: [4] (x, x_dot, theta, theta_dot).
      action: [] 0 pushes left, 1 pushes right.

    Returns:
      [4] the next state.
    """
    x, x_dot, theta, theta_dot = state[0], state[1], state[2], state[3]
    force = jnp.where(action == 1, FORCE_MAG, -FORCE_MAG)
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    temp = (force + POLE_MASS_LENGTH * theta_dot**2 * sin) / TOTAL_MASS
    theta_acc = (GRAVITY * sin - cos * temp) / (
        HALF_POLE_LENGTH * (4.0 / 3.0 - MASS_POLE * cos**2 / TOTAL_MASS)
    )
    x_acc = temp - POLE_MASS_LENGTH * theta_acc * cos / TOTAL_MASS
    x = x + TAU * x_dot
    x_dot = x_dot + TAU * x_acc
    theta = theta + TAU * theta_dot
    theta_dot = theta_dot + TAU * theta_acc
    return jnp.stack([x, x_dot, theta, theta_dot])


def cartpole_terminated(state: jax.Array) -> jax.Array:
    """[] bool: the cart left the track or the pole fell past 12 degrees."""
    return (jnp.abs(state[0]) > X_LIMIT) | (jnp.abs(state[2]) > THETA_LIMIT)


class CartPole(JaxWorld):
    """CartPole-v1: reward 1 per step (the terminating step included), 500-step limit.

    Observation: [4] float32 (x, x_dot, theta, theta_dot). Actions: push left, push right.
    """

    def __init__(self, max_episode_steps: int = 500):
        self.spec = WorldSpec(
            name="cartpole",
            observation_shape=(4,),
            observation_dtype="float32",
            num_actions=2,
            action_names=("push left", "push right"),
            max_episode_steps=max_episode_steps,
            observation_kind="vector",
            reward_range=(0.0, 1.0),
        )

    def _reset(self, key):
        state = jax.random.uniform(key, (4,), jnp.float32, -0.05, 0.05)
        return state, state

    def _step(self, game, action, key):
        del key
        state = cartpole_dynamics(game, action)
        return state, state, jnp.float32(1.0), cartpole_terminated(state)
