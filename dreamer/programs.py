"""The jitted programs of a run, built once per process for a config and shared.

`compiled_programs` builds a run's programs (`Programs`) or returns those a run of the same
program key built before (`program_key`): the config with its host fields (`config.host_field`:
the real budget, the schedules, the seed, ...) blanked, the world (only its spec for a host world,
whose programs do not contain it), the mesh and the process count. A field shapes the programs
unless it declares itself a host field where it is defined, so none is left out by hand.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp

from dreamer import actor, learner, parallel, reanalyse
from dreamer import replay as replay_lib
from dreamer.config import HOST, Config, updates_per_phase
from dreamer.networks import make_model, memory_size


@dataclasses.dataclass(frozen=True)
class Programs:
    """The jitted functions of a run, built once per process for a config (see
    `compiled_programs`). `collect`, `collect_of_length`, `evaluate` and `new_collector` are None
    for host worlds. `collect` steps every copy `run.collect_steps` times; `collect_of_length(L)`
    gives the collection of L steps a copy (the last one of a budget that is not a whole number of
    rounds), and `evaluate(episodes)` the jitted evaluation of that many episodes, each built once
    per length or count, when first asked for."""

    model: Any
    new_train_state: Any
    new_replay: Any
    add: Any
    train_many: Any
    act: Any
    act_eval: Any
    reanalyse_pass: Any
    stale_rows: Any
    new_collector: Any = None
    collect: Any = None
    collect_of_length: Any = None
    evaluate: Any = None


_PROGRAMS: collections.OrderedDict = collections.OrderedDict()
_PROGRAMS_KEPT = 4

_LEARNER_PROGRAMS = ("model", "new_train_state", "new_replay", "add", "train_many", "act",
                     "act_eval", "reanalyse_pass", "stale_rows")
"""The programs that do not contain the world: a continual run's worlds share them."""


def host_fields(config: Config) -> tuple[str, ...]:
    """The config's host fields (`config.host_field`), dotted ("run.real_steps"), sorted."""
    def walk(node, prefix: str):
        for field in dataclasses.fields(node):
            value = getattr(node, field.name)
            if field.metadata.get(HOST):
                yield prefix + field.name
            elif dataclasses.is_dataclass(value):
                yield from walk(value, f"{prefix}{field.name}.")

    return tuple(sorted(walk(config, "")))


def _without_host_fields(node):
    """A config (or one of its sections) with every host field set to 0, in every section."""
    blanked = {}
    for field in dataclasses.fields(node):
        value = getattr(node, field.name)
        if field.metadata.get(HOST):
            blanked[field.name] = 0
        elif dataclasses.is_dataclass(value):
            blanked[field.name] = _without_host_fields(value)
    return dataclasses.replace(node, **blanked)


def program_key(config: Config, world, mesh) -> tuple:
    """What a run's programs are built from: runs of one key share compiled programs. The config
    without its host fields; a JAX world's type and spec (its collection and evaluation contain
    it), a host world's spec alone (and not its name or options: its programs see only the spec);
    the mesh and the process count."""
    program_config = _without_host_fields(config)
    if not world.is_jax:
        program_config = dataclasses.replace(program_config, world="", world_options=())
    return (program_config, type(world) if world.is_jax else None, world.spec, mesh,
            jax.process_count())


def compiled_programs(config: Config, world, mesh, shared: Programs | None = None) -> Programs:
    """The run's jitted programs, shared by every Trainer of this process with the same program
    key (`program_key`), so a second run (a resume, an evaluation, a notebook's next cell, a test)
    does not trace, lower and compile them again. The newest few keys are kept.

    `shared`: the programs of another world of a continual run; its learner, replay and search
    programs (`_LEARNER_PROGRAMS`, for the same common spec) are taken, and only this world's
    collection and evaluation are its own."""
    key = program_key(config, world, mesh)
    if key in _PROGRAMS:
        _PROGRAMS.move_to_end(key)
        programs = _PROGRAMS[key]
    else:
        programs = _build_programs(config, world, mesh, shared)
        _PROGRAMS[key] = programs
        while len(_PROGRAMS) > _PROGRAMS_KEPT:
            _PROGRAMS.popitem(last=False)
    if shared is not None and programs.train_many is not shared.train_many:
        programs = dataclasses.replace(
            programs, **{name: getattr(shared, name) for name in _LEARNER_PROGRAMS})
    return programs


def _shardings(mesh, inputs, outputs) -> dict:
    """jit's sharding arguments on a mesh; none without one (plain single-device jit)."""
    return {} if mesh is None else {"in_shardings": inputs, "out_shardings": outputs}


def _build_programs(c: Config, world, mesh, shared: Programs | None = None) -> Programs:
    spec = world.spec
    model = make_model(c.model, spec) if shared is None else shared.model
    rep = parallel.replicated(mesh)
    A, N = spec.num_actions, c.run.num_envs
    rows = replay_lib.Rows(
        observation=jnp.zeros((1, N, *spec.observation_shape), spec.observation_dtype),
        action=jnp.zeros((1, N), jnp.int32),
        reward=jnp.zeros((1, N), jnp.float32),
        terminated=jnp.zeros((1, N), bool),
        truncated=jnp.zeros((1, N), bool),
        policy=jnp.zeros((1, N, A), jnp.float32),
        value=jnp.zeros((1, N), jnp.float32),
        action_mask=jnp.zeros((1, N, A), bool),
        memory=jnp.zeros((1, N, memory_size(model.config)), jnp.float32)
        if memory_size(model.config) else None,
    )

    def new_replay():
        return replay_lib.init(rows, c.replay.capacity)

    replay_sh = parallel.split_streams(mesh, jax.eval_shape(new_replay))
    rows_sh = parallel.split_streams(mesh, rows)
    act_out = {} if jax.process_count() == 1 else {
        "out_shardings": parallel.split_leading(mesh, jnp.zeros((1,)))}
    programs = {name: getattr(shared, name) for name in _LEARNER_PROGRAMS} if shared else dict(
        model=model,
        new_train_state=learner.make_init_train_state(model, c, rep),
        new_replay=jax.jit(new_replay, out_shardings=replay_sh),
        add=jax.jit(replay_lib.add, donate_argnums=0, **_shardings(
            mesh, (replay_sh, rows_sh), replay_sh)),
        train_many=jax.jit(
            learner.make_train_many(model, c, updates_per_phase(c), mesh),
            donate_argnums=(0, 1),
            **_shardings(mesh, (rep, replay_sh, rep, rep), (rep, replay_sh, rep)),
        ),
        act=jax.jit(actor.make_act(model, c, explore=True), **act_out),
        act_eval=jax.jit(actor.make_act(model, c, explore=False), **act_out),
        reanalyse_pass=jax.jit(
            reanalyse.make_reanalyse_pass(model, c), donate_argnums=1,
            **_shardings(mesh, (rep, replay_sh, rep, rep), replay_sh)),
        stale_rows=jax.jit(functools.partial(reanalyse.stale_rows, config=c)),
    )
    if world.is_jax:
        def new_collector(key):
            return actor.init_collector(world, key, N, model)

        collector_sh = parallel.split_leading(
            mesh, jax.eval_shape(new_collector, jax.random.key(0)))
        # keyed by length, not by the budget (a host field): a run whose budget ends on a
        # short round, and any later run that needs the same length, share its program
        collect_of_length = functools.cache(lambda length: jax.jit(
            actor.make_collect(world, model, c, length),
            **_shardings(mesh, (rep, collector_sh, rep, rep), (collector_sh, rows_sh, rep))))
        programs.update(
            new_collector=jax.jit(new_collector, **_shardings(mesh, (rep,), collector_sh)),
            collect=collect_of_length(c.run.collect_steps),
            collect_of_length=collect_of_length,
            evaluate=functools.cache(lambda episodes: jax.jit(
                actor.make_evaluate(world, model, c, episodes),
                **_shardings(mesh, (rep, rep, rep), rep))),
        )
    return Programs(**programs)
