"""`dreamer play`: play a world in the terminal, or watch a trained agent play it.

A person plays by typing a command's number or its text (`take coin`, or just `coin`, `north`);
`q` quits. With `--agent RUN_DIR` the run's latest checkpoint plays greedily with its search, and
each step shows the search's most visited commands with their visit shares. A continual agent
(`run.worlds`) plays any world of its sequence (`--world`), seen through the sequence's common
interface as in training (`worlds.padded`). Input is read with
`input()` and output written with `print`, so a test can drive a session.

Imports nothing heavy at module level (the CLI imports this module to build its parser).
"""

from __future__ import annotations

QUIT = ("q", "quit", "exit")


def add_arguments(parser) -> None:
    """Adds `dreamer play`'s options to an argparse (sub)parser."""
    parser.add_argument("--world", default=None,
                        help="world name (default text/coin; with --agent, the agent's world, or for a "
                             "continual agent the first world of its sequence)")
    parser.add_argument("--agent", default=None, metavar="RUN_DIR",
                        help="run folder of a trained agent to watch")
    parser.add_argument("--option", dest="options", action="append", default=[],
                        metavar="NAME=VALUE",
                        help="build the world with an option, e.g. --option rooms=3 (repeatable; "
                             "an agent's world keeps the options it was trained with)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode")
    parser.add_argument("--episodes", type=int, default=1,
                        help="episodes the agent plays before the session ends (with --agent)")
    parser.add_argument("--top", type=int, default=3,
                        help="search actions shown per step (with --agent)")
    parser.add_argument("--pause", action="store_true",
                        help="wait for Enter before each agent step (q quits)")


class _Session:
    """One copy of a world behind `reset()` / `step(action)` returning unbatched numpy TimeSteps:
    a `_JaxSession` or a `_HostSession` (`_open_session` picks the one for the world)."""

    def __init__(self, world, seed: int):
        self.world, self.spec, self.seed = world, world.spec, seed
        self.renderable = callable(getattr(world, "render", None))

    def close(self):
        self.world.close()


class _JaxSession(_Session):
    """A JAX world: episode one starts from `reset(jax.random.key(seed))`; steps use keys folded
    from it (the world's own auto-reset starts later episodes)."""

    def __init__(self, world, seed: int):
        import jax

        super().__init__(world, seed)
        self._reset, self._step = jax.jit(world.reset), jax.jit(world.step)
        self._t = 0

    def reset(self):
        import jax
        import numpy as np

        self.state, ts = self._reset(jax.random.key(self.seed))
        return jax.tree.map(np.asarray, ts)

    def step(self, action: int):
        import jax
        import numpy as np

        self._t += 1
        key = jax.random.fold_in(jax.random.key(self.seed), self._t)
        self.state, ts = self._step(self.state, jax.numpy.int32(action), key)
        return jax.tree.map(np.asarray, ts)


class _HostSession(_Session):
    """A host world of one copy, reset with `seed`."""

    def reset(self):
        return self._unbatch(self.world.reset(self.seed))

    def step(self, action: int):
        import numpy as np

        return self._unbatch(self.world.step(np.asarray([action])))

    @staticmethod
    def _unbatch(ts):
        import jax
        import numpy as np

        return jax.tree.map(lambda x: np.asarray(x)[0], ts)


def _open_session(name: str, seed: int, options: dict | None = None) -> _Session:
    """The session of one copy of world `name`, built with `options`."""
    import worlds

    session = _JaxSession if worlds.kind(name) == "jax" else _HostSession
    return session(worlds.make(name, num_envs=1, **(options or {})), seed)


def parse_command(text: str, valid: list[int], names: tuple[str, ...]) -> int | None:
    """The action a typed line names, or None.

    Accepts the command's number in the listed valid commands (1-based), its full text, or a
    word that ends or starts exactly one valid command (`north` -> `go north`, `take` when only one
    `take ...` is valid). Case and extra spaces are ignored.
    """
    words = " ".join(text.lower().split())
    if not words:
        return None
    if words.isdigit():
        number = int(words)
        return valid[number - 1] if 1 <= number <= len(valid) else None
    exact = [a for a in range(len(names)) if names[a].lower() == words]
    if exact:
        return exact[0]
    partial = [a for a in valid if names[a].lower().endswith(" " + words)
               or names[a].lower().startswith(words + " ")]
    return partial[0] if len(partial) == 1 else None


def _list_commands(valid: list[int], names) -> str:
    return "Commands: " + "  ".join(f"{i}) {names[a]}" for i, a in enumerate(valid, 1))


def _end_of_episode(ts, score: float, episode: int) -> str:
    how = "won" if bool(ts.terminated) and float(ts.reward) > 0 else (
        "ended" if bool(ts.terminated) else "ran out of steps")
    return f"*** Episode {episode} {how}: score {score:g}. ***"


def _play_human(session: _Session) -> int:
    names = session.spec.action_names
    print(f"{session.spec.name} (seed {session.seed}): type a command's number or its text; "
          "q quits.")
    ts = session.reset()
    score, episode, finished, total = 0.0, 1, 0, 0.0
    while True:
        print()
        print(session.world.render(ts.observation))
        valid = [a for a in range(len(names)) if ts.action_mask[a]]
        print(_list_commands(valid, names))
        try:
            line = input("> ")
        except EOFError:
            line = "q"
        if line.strip().lower() in QUIT:
            break
        action = parse_command(line, valid, names)
        if action is None:
            print(f"Not a command here: {line.strip()!r}. Type a number from the list, or q.")
            continue
        if action not in valid:
            print(f"You cannot {names[action]} here.")
            continue
        ts = session.step(action)
        score += float(ts.reward)
        print(f"-> {names[action]}: reward {float(ts.reward):g}, score {score:g}")
        if ts.terminated or ts.truncated:
            print(_end_of_episode(ts, score, episode))
            finished, total = finished + 1, total + score
            score, episode = 0.0, episode + 1
            print(f"Episode {episode} begins.")
    print(f"Bye: {finished} episode(s) finished, total score {total:g}.")
    return 0


def _read_agent_config(run_dir: str):
    """The config `run_dir` was trained with, or a UserError."""
    from dreamer import agent as agent_lib
    from dreamer.errors import UserError

    try:
        return agent_lib.read_config(run_dir)
    except agent_lib.NotARunError:
        raise UserError(f"--agent {run_dir}: not a dreamer run folder (no config.json / "
                        "checkpoints); train one with `dreamer train --out RUN_DIR`") from None


def _watch_agent(session: _Session, args, config, params, model, ledger) -> int:
    import jax
    import jax.numpy as jnp
    import numpy as np

    from dreamer.actor import host_next_memory, initial_memory, make_act
    from dreamer.networks import agent_input

    names = session.spec.action_names

    temperature = config.run.eval_temperature
    search = make_act(model, config, explore=False)

    @jax.jit
    def act(params, key, observation, action_mask, memory):
        return search(params, key, agent_input(observation[None], memory), action_mask[None],
                      temperature)

    memory = initial_memory(model, 1)  # the agent's memory of the episode (None: it keeps none)

    how = "greedy search" if temperature == 0 else f"search sampled at temperature {temperature}"
    print(f"{session.spec.name} (seed {session.seed}): agent {args.agent} after "
          f"{ledger.env_steps} real steps and {ledger.updates} updates, {how} with "
          f"{config.search.num_simulations} simulations.")
    ts = session.reset()
    key = jax.random.key(session.seed)
    score, episode, results, t = 0.0, 1, [], 0
    while episode <= args.episodes:
        print()
        print(session.world.render(ts.observation))
        if args.pause:
            try:
                line = input("[Enter] next step, q quits > ")
            except EOFError:
                line = "q"
            if line.strip().lower() in QUIT:
                break
        t += 1
        out = act(params, jax.random.fold_in(key, t), jnp.asarray(ts.observation),
                  jnp.asarray(ts.action_mask), memory)
        policy = np.asarray(out.policy[0])
        order = [a for a in np.argsort(-policy, kind="stable")[: max(args.top, 1)] if policy[a] > 0]
        shares = ", ".join(f"{names[a]} {policy[a]:.0%}" for a in order)
        print(f"search: {shares} | value {float(out.value[0]):.2f}")
        action = int(out.action[0])
        ts = session.step(action)
        memory = host_next_memory(out.memory, np.asarray([ts.terminated or ts.truncated]))
        score += float(ts.reward)
        print(f"-> {names[action]}: reward {float(ts.reward):g}, score {score:g}")
        if ts.terminated or ts.truncated:
            print(_end_of_episode(ts, score, episode))
            results.append(score)
            score, episode = 0.0, episode + 1
    if results:
        print(f"Agent: {len(results)} episode(s), mean score {np.mean(results):g}.")
    return 0


def run(args) -> int:
    """Runs `dreamer play` with parsed arguments; returns the exit status."""
    from dreamer.config import parse_world_option
    from dreamer.errors import UserError

    if args.episodes < 1:
        raise UserError(f"--episodes must be >= 1, got {args.episodes}")
    options = {}
    for item in args.options:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UserError(f"--option {item!r}: expected NAME=VALUE, e.g. --option rooms=3")
        options[name.strip()] = parse_world_option(value)
    config = None
    world = args.world
    if args.agent is not None:
        config = _read_agent_config(args.agent)
        sequence = config.run.world_sequence or (config.world,)
        if world is not None and world not in sequence:
            if config.run.worlds:
                raise UserError(f"--agent {args.agent} was trained on the sequence "
                                f"{config.run.worlds}, not on {world}; name one of its worlds")
            raise UserError(f"--agent {args.agent} was trained on {config.world}, not {world}; "
                            "drop --world or name that world")
        world = world or sequence[0]
        if options:
            raise UserError(f"--agent {args.agent} plays the world it was trained on, with its "
                            f"options {config.world_kwargs()}; drop --option")
        # An agent's world is built with the options it was trained with.
        options = config.world_kwargs()
    if config is not None and config.run.worlds:
        # a continual agent sees every world of its sequence through their common interface
        from dreamer.train import make_continual_worlds

        padded = make_continual_worlds(config)
        session = _JaxSession(padded.pop(sequence.index(world)), args.seed)
        for other in padded:
            other.close()
    else:
        session = _open_session(world or "text/coin", args.seed, options)
    try:
        if not session.renderable:
            fix = ("try --world text/coin or text/quest" if config is None else
                   f"record the agent with `dreamer eval --run {args.agent} --world "
                   f"{session.spec.name} --video FILE.gif`" if config.run.worlds
                   else f"record the agent with `dreamer eval --run {args.agent} --video FILE.gif`")
            raise UserError(f"world {session.spec.name} cannot be shown as text (it has no "
                            f"render); {fix}")
        if config is None:
            return _play_human(session)
        from dreamer import agent as agent_lib

        agent = agent_lib.load(args.agent, session.world, config)  # read-only
        return _watch_agent(session, args, config, agent.params, agent.model, agent.ledger)
    finally:
        session.close()
