"""A CartPole host world for tests of the training loop's host-world paths."""

import worlds
from worlds.gym import make_gym


class WrappedCartPole(worlds.HostWorld):
    """gym:CartPole-v1 behind a wrapper that cannot be saved (like an emulator outside Python) and
    that raises `RuntimeError(crash_message)` at its `crash_at`-th step when that is set."""

    crash_at: int | None = None
    crash_message = "emulator crashed"

    def __init__(self, num_envs=1):
        self.inner = make_gym("CartPole-v1", num_envs=num_envs)
        self.spec, self.num_envs, self.calls = self.inner.spec, num_envs, 0

    def reset(self, seed):
        return self.inner.reset(seed)

    def step(self, actions):
        self.calls += 1
        if self.calls == self.crash_at:
            raise RuntimeError(self.crash_message)
        return self.inner.step(actions)

    @property
    def frames(self):
        return self.inner.frames

    def close(self):
        self.inner.close()
