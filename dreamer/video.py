"""Recordings of an agent's evaluation episodes: `dreamer eval --run RUN --video FILE`.

* `.gif` (Pillow) or `.mp4` (OpenCV, codec `mp4v`): image worlds (MinAtar, Atari, catch,
  gymnasium image worlds). Each frame is drawn from the observation the agent acted on, kept
  small and upscaled with nearest neighbour (a MinAtar 10x10 board becomes 160x160, one colour per
  channel; Atari shows the newest frame of its stack), under a strip with the episode, the step
  and the score so far. An episode of T steps gives T + 1 frames: the T observations acted on,
  then its last one again showing the final score (held for a second in a GIF).
* `.txt`: a transcript, for every world (and the only recording of text and vector worlds): each
  step's observation (as text for text worlds), the action taken and the reward.

The recorded episodes are the evaluation's own: the first `episodes` episodes with the key of the
run's evaluation at that checkpoint (`dreamer.train.evaluation_key`), played the same way, so
their returns are the ones `dreamer eval --episodes N` reports.

Imports nothing heavy at module level.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from dreamer.errors import UserError

FORMATS = (".gif", ".mp4", ".txt")
MOVIE_FORMATS = (".gif", ".mp4")
TARGET_SIZE = 160  # pixels on the longer side of an upscaled observation (about)
BANNER = 28  # pixels of the text strip above the picture (two lines)
MIN_WIDTH = 176  # the strip's text needs this much
FRAME_MS = 100  # GIF: each step 0.1 s; the end of an episode is held for `END_MS`
END_MS = 1000
FPS = 10  # MP4

# Colours of MinAtar-style channels (one per channel, the highest channel set wins as in
# MinAtar's own display): yellow, red, blue, green, orange, purple, cyan, pink, ...
PALETTE = ((255, 220, 0), (230, 60, 60), (70, 140, 255), (60, 200, 90), (255, 140, 0),
           (170, 90, 255), (0, 220, 220), (255, 120, 200), (160, 160, 160), (255, 255, 255))


@dataclasses.dataclass
class Step:
    """One agent step: the observation acted on, the action, and the reward it brought."""

    observation: Any
    action: int
    reward: float


@dataclasses.dataclass
class Episode:
    """An evaluation episode as played: its steps, and how it ended (`terminated`: a terminal
    state; otherwise the time limit)."""

    steps: list[Step]
    terminated: bool

    @property
    def score(self) -> float:
        return float(sum(s.reward for s in self.steps))


def check_path(path: str) -> str:
    """The recording's format (".gif", ".mp4" or ".txt") from its file name; a UserError for any
    other, or for a folder that does not exist or cannot be written. Creates nothing."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in FORMATS:
        raise UserError(f"--video {path}: unknown format {extension or '(no extension)'!r}; name "
                        "a .gif or .mp4 file (image worlds) or a .txt file (a transcript, any world)")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UserError(f"--video {path}: the folder {folder} does not exist; create it or name "
                        "a file in an existing folder")
    if not os.access(folder, os.W_OK | os.X_OK) or os.path.isdir(path):
        raise UserError(f"--video {path}: cannot write there; choose another file")
    return extension


def check_world(path: str, spec) -> None:
    """A UserError, naming the fix, if `spec`'s world cannot be recorded in `path`'s format."""
    extension = os.path.splitext(path)[1].lower()
    if extension in MOVIE_FORMATS and spec.observation_kind != "image":
        what = ("a text world" if spec.observation_kind == "tokens"
                else f"a world of {spec.observation_shape[0]}-number vector observations")
        fix = os.path.splitext(path)[0] + ".txt"
        raise UserError(f"--video {path}: {spec.name} is {what}, with no picture to put in a "
                        f"{extension}; record a transcript instead: --video {fix}")


# --- playing ----------------------------------------------------------------------------------


def play(agent, episodes: int, temperature: float) -> list[Episode]:
    """The first `episodes` evaluation episodes of `agent` (a `dreamer.agent.Agent`), played as
    its evaluation plays them (same key, copies and world), recorded step by step."""
    import numpy as np

    from dreamer.train import evaluation_key, make_eval_world

    key = evaluation_key(agent.config.seed, agent.ledger.env_steps)
    if agent.world is not None:
        return _play_jax(agent, agent.world, key, episodes, np.float32(temperature))
    world = make_eval_world(agent.config, episodes)
    try:
        return _play_host(agent, world, key, episodes, temperature)
    finally:
        world.close()


def _play_jax(agent, world, key, episodes: int, temperature) -> list[Episode]:
    """`dreamer.actor.make_evaluate`'s loop, stepped from the host."""
    import jax

    from dreamer.actor import initial_memory
    from dreamer.networks import agent_input

    reset_key, key = jax.random.split(key)
    state, ts = jax.jit(jax.vmap(world.reset))(jax.random.split(reset_key, episodes))
    step_batch = jax.jit(world.step_batch)
    carried = {"state": state}

    def act(ts, memory, search_key):
        return agent.programs.act_eval(agent.params, search_key,
                                       agent_input(ts.observation, memory), ts.action_mask,
                                       temperature)

    def step(action, step_key):
        carried["state"], ts = step_batch(carried["state"], action,
                                          jax.random.split(step_key, episodes))
        return ts

    return _record(episodes, world.spec.max_episode_steps, ts, act, step,
                   lambda key: jax.random.split(key, 3), key,
                   initial_memory(agent.programs.model, episodes))


def _play_host(agent, world, key, episodes: int, temperature: float) -> list[Episode]:
    """`dreamer.actor.host_evaluate`'s loop (as `dreamer.train.evaluate_policy` calls it)."""
    import jax

    from dreamer.actor import initial_memory
    from dreamer.networks import agent_input

    host_act = _host_act()
    config = agent.config
    ts = world.reset(config.seed + 1_000_003 + jax.process_index() * episodes)

    def split(key):
        key, search_key = jax.random.split(key)
        return key, search_key, None

    return _record(
        episodes, world.spec.max_episode_steps, ts,
        act=lambda ts, memory, k: host_act(agent.programs.act_eval, agent.mesh, agent.params, k,
                                           agent_input(ts.observation, memory), ts.action_mask,
                                           temperature),
        step=lambda action, k: world.step(action), split=split, key=key,
        memory=initial_memory(agent.programs.model, episodes))


def _host_act():
    """`host_act`, the batched search of a host world's evaluation (moving from dreamer.train to
    dreamer.collect)."""
    try:
        from dreamer.collect import host_act
    except ImportError:
        from dreamer.train import host_act
    return host_act


def _record(episodes: int, limit: int, ts, act, step, split, key, memory=None) -> list[Episode]:
    """Steps `episodes` copies until each has finished its first episode (or `limit` steps),
    recording each copy's steps of that episode; `memory`: the agent's initial memory of the
    copies (None: it keeps none), carried from step to step."""
    import numpy as np

    from dreamer.actor import host_next_memory

    recorded = [Episode([], False) for _ in range(episodes)]
    finished = np.zeros((episodes,), bool)
    for _ in range(limit):
        if finished.all():
            break
        key, search_key, step_key = split(key)
        out = act(ts, memory, search_key)
        action = np.asarray(out.action)
        observation = np.asarray(ts.observation)
        ts = step(action, step_key)
        reward, terminated = np.asarray(ts.reward), np.asarray(ts.terminated)
        done = terminated | np.asarray(ts.truncated)
        memory = host_next_memory(out.memory, done)
        for i in np.flatnonzero(~finished):
            recorded[i].steps.append(Step(observation[i], int(action[i]), float(reward[i])))
            recorded[i].terminated = bool(terminated[i])
        finished |= done
    return recorded


# --- drawing ----------------------------------------------------------------------------------


def picture(observation, spec, options: dict | None = None):
    """[H, W, 3] uint8 of one image observation, at its own size: channel images (MinAtar,
    several 0/1 channels) in one colour each, one channel (catch) in grey, uint8 frame stacks
    (Atari) as their newest frame (grey, or RGB with `grayscale=False`)."""
    import numpy as np

    x = np.asarray(observation)
    if x.ndim == 2:
        x = x[..., None]
    channels = x.shape[-1]
    if x.dtype == np.uint8:
        rgb = (not (options or {}).get("grayscale", True) if spec.name.startswith("atari/")
               else channels == 3)
        if rgb and channels % 3 == 0:
            return np.ascontiguousarray(x[..., -3:])
        return np.repeat(x[..., -1:], 3, axis=-1)
    if channels == 1:
        grey = (np.clip(x[..., 0].astype(np.float32), 0.0, 1.0) * 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    out = np.zeros((*x.shape[:2], 3), np.uint8)
    for c in range(channels):  # the highest channel set wins, as in MinAtar's display
        out[x[..., c] > 0] = PALETTE[c % len(PALETTE)]
    return out


def scale_of(spec) -> int:
    """The nearest-neighbour upscaling of `spec`'s observations: about `TARGET_SIZE` pixels on
    the longer side (MinAtar 10x10 x16, Atari 96x96 x2)."""
    height, width = spec.observation_shape[:2]
    return max(1, round(TARGET_SIZE / max(height, width)))


def frame_size(spec) -> tuple[int, int]:
    """(width, height) in pixels of every frame of `spec`'s recordings (even, for MP4)."""
    height, width = spec.observation_shape[:2]
    scale = scale_of(spec)
    w, h = max(width * scale, MIN_WIDTH), height * scale + BANNER
    return w + w % 2, h + h % 2


def frame(image, spec, text: str):
    """The frame of one observation's picture `image`: upscaled, centred under a black strip
    with `text` (two lines at most)."""
    import cv2
    import numpy as np

    scale = scale_of(spec)
    big = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
    width, height = frame_size(spec)
    out = np.zeros((height, width, 3), np.uint8)
    left = (width - big.shape[1]) // 2
    out[BANNER:BANNER + big.shape[0], left:left + big.shape[1]] = big
    for row, line in enumerate(text.splitlines()[:2]):
        cv2.putText(out, line, (3, 11 + 13 * row), cv2.FONT_HERSHEY_PLAIN, 0.8, (255, 255, 255),
                    1, cv2.LINE_8)
    return out


def frames(recorded: list[Episode], spec, options: dict | None = None):
    """Yields (frame [H, W, 3] uint8, milliseconds to show it) of every episode: one per step
    (step and score before it), then the last observation again with the final score."""
    total = len(recorded)
    for number, episode in enumerate(recorded, 1):
        score = 0.0
        for t, s in enumerate(episode.steps):
            image = picture(s.observation, spec, options)
            yield frame(image, spec, f"episode {number}/{total} step {t}\nscore {score:g}"), FRAME_MS
            score += s.reward
        if episode.steps:
            end = "ended" if episode.terminated else "time limit"
            yield frame(image, spec, f"episode {number}/{total} step {len(episode.steps)}\n"
                                     f"score {score:g} ({end})"), END_MS


def frame_count(recorded: list[Episode]) -> int:
    """Frames of a GIF or MP4 of `recorded`: steps + 1 per episode."""
    return sum(len(e.steps) + 1 for e in recorded if e.steps)


def write_gif(path: str, recorded: list[Episode], spec, options: dict | None = None) -> None:
    from PIL import Image

    pictures, durations = [], []
    for image, ms in frames(recorded, spec, options):
        pictures.append(Image.fromarray(image))
        durations.append(ms)
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=durations,
                     loop=0, optimize=False, disposal=1)


def write_mp4(path: str, recorded: list[Episode], spec, options: dict | None = None) -> None:
    import cv2

    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), FPS, frame_size(spec))
    if not writer.isOpened():
        raise UserError(f"--video {path}: OpenCV cannot write MP4 here; try a .gif")
    try:
        for image, _ in frames(recorded, spec, options):
            writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()


def _describe(observation, spec, world) -> str | None:
    import numpy as np

    if callable(getattr(world, "render", None)):
        return world.render(observation)
    if spec.observation_kind == "vector":
        return "observation [" + ", ".join(f"{v:.3g}" for v in np.asarray(observation)) + "]"
    return None  # an image: the transcript lists the actions and rewards


def transcript(recorded: list[Episode], spec, world=None, header: str = "") -> str:
    """The text of a `.txt` recording: each step's observation (as text where `world` renders
    it, a vector's numbers), the action and its reward, and each episode's score."""
    names = spec.action_names
    lines = [header] if header else []
    for number, episode in enumerate(recorded, 1):
        lines.append(f"=== Episode {number} of {len(recorded)} ===")
        score = 0.0
        for t, s in enumerate(episode.steps):
            seen = _describe(s.observation, spec, world)
            if seen is not None:
                lines.append(f"[step {t}] {seen}")
            score += s.reward
            lines.append(f"  -> {names[s.action]}: reward {s.reward:g}, score {score:g}")
        how = "ended" if episode.terminated else "ran out of steps"
        lines.append(f"*** Episode {number} {how} after {len(episode.steps)} steps: score "
                     f"{score:g} ***")
        lines.append("")
    return "\n".join(lines)


def record(agent, path: str, episodes: int, temperature: float) -> list[Episode]:
    """Plays `agent`'s first `episodes` evaluation episodes at `temperature` and writes them to
    `path` (.gif, .mp4 or .txt; see the module's docstring). Returns the episodes."""
    extension = check_path(path)
    check_world(path, agent.spec)
    from dreamer.train import make_eval_world

    recorded = play(agent, episodes, temperature)
    options = agent.config.world_kwargs()
    tmp = path + ".part" + extension  # written whole, then renamed: no half file on an error
    try:
        if extension == ".gif":
            write_gif(tmp, recorded, agent.spec, options)
        elif extension == ".mp4":
            write_mp4(tmp, recorded, agent.spec, options)
        else:
            world = agent.world
            if world is None and agent.spec.observation_kind == "tokens":
                world = make_eval_world(agent.config, 1)  # its words
            try:
                header = (f"{agent.spec.name}: {len(recorded)} evaluation episode(s) after "
                          f"{agent.ledger.env_steps} real steps, temperature {temperature:g}")
                text = transcript(recorded, agent.spec, world, header)
            finally:
                if world is not None and world is not agent.world:
                    world.close()
            with open(tmp, "w") as f:
                f.write(text)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return recorded
