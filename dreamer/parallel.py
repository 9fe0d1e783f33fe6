"""Data parallelism over devices and processes, on JAX's own sharding and distributed runtime.

One mesh axis, `data`. Parameters, optimizer state and the learner's scalars are replicated; the
world copies (collector state), the replay's streams and each training batch are split along
`data`. The jitted functions stay the single-device functions: XLA's SPMD partitioner inserts the
gradient all-reduce, so N devices compute the same update as one device (up to the order of float
sums). Across processes (`jax.distributed`) the same program runs in every process on global
arrays; each process steps the world copies that live on its devices.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from dreamer.errors import UserError

AXIS = "data"


class DistributedSetupError(UserError, RuntimeError):
    """`--distributed` without the environment that tells a process where it belongs."""


def initialize_distributed() -> None:
    """Starts `jax.distributed` from the environment, before any other JAX call.

    Reads `JAX_COORDINATOR_ADDRESS` (host:port of process 0), `JAX_NUM_PROCESSES` and
    `JAX_PROCESS_ID`; when the last two are unset, JAX detects them itself on Slurm, Open MPI and
    Kubernetes (JobSet) clusters.
    """
    address = os.environ.get("JAX_COORDINATOR_ADDRESS")
    count, index = os.environ.get("JAX_NUM_PROCESSES"), os.environ.get("JAX_PROCESS_ID")
    if (count is None) != (index is None):
        raise DistributedSetupError(
            "--distributed: set both JAX_NUM_PROCESSES and JAX_PROCESS_ID (or neither, on a "
            "Slurm / Open MPI / Kubernetes cluster that JAX detects)"
        )
    try:
        jax.distributed.initialize(
            coordinator_address=address,
            num_processes=None if count is None else int(count),
            process_id=None if index is None else int(index),
        )
    except (ValueError, RuntimeError) as e:
        raise DistributedSetupError(
            f"--distributed: jax.distributed could not start ({str(e).splitlines()[0]}). Set "
            "JAX_COORDINATOR_ADDRESS=host:port of process 0, JAX_NUM_PROCESSES and JAX_PROCESS_ID"
        ) from None


def make_mesh(num_devices: int) -> Mesh | None:
    """A 1-D `data` mesh over the first `num_devices` devices of all processes (0 = all of them);
    None when that is a single device, so single-device runs stay unsharded."""
    devices = jax.devices()
    count = len(devices) if num_devices == 0 else num_devices
    if count > len(devices):
        raise ValueError(f"run.devices={num_devices}, but only {len(devices)} devices are present")
    if count == 1:
        return None
    if jax.process_count() > 1 and count != len(devices):
        raise ValueError("run.devices must be 0 (all devices) in a multi-process run")
    return Mesh(np.asarray(devices[:count]), (AXIS,))


def replicated(mesh: Mesh | None):
    return None if mesh is None else NamedSharding(mesh, P())


def split_leading(mesh: Mesh | None, tree):
    """Shardings that split every leaf along its first axis (world copies, batches)."""
    if mesh is None:
        return None
    return jax.tree.map(lambda x: NamedSharding(mesh, P(AXIS) if np.ndim(x) else P()), tree)


def split_streams(mesh: Mesh | None, tree):
    """Shardings for [time, N, ...] leaves (replay rows, collected rows): split along N."""
    if mesh is None:
        return None
    return jax.tree.map(
        lambda x: NamedSharding(mesh, P(None, AXIS) if np.ndim(x) >= 2 else P()), tree
    )


def constrain_batch(tree, mesh: Mesh | None):
    """Inside jit: lays a batch ([B, ...] leaves) out split along `data`."""
    if mesh is None:
        return tree
    return jax.lax.with_sharding_constraint(tree, split_leading(mesh, tree))


def committed(tree, mesh: Mesh | None):
    """`tree`'s arrays committed to their devices without a mesh, as a restored checkpoint's
    arrays are: a resumed run then lowers to the same programs and reuses their
    persistent-cache entries instead of compiling them again. With a mesh, `tree` as it is."""
    if mesh is not None:
        return tree
    return jax.tree.map(lambda x: jax.device_put(x, x.sharding), tree)


def sync_processes(name: str) -> None:
    """All processes of a distributed run meet here (no-op in a single process). The first
    collective also sets up the CPU backend's communicator while the processes are in step."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def to_global(tree, mesh: Mesh | None, spec: P):
    """Host-local numpy arrays of this process (its share along the `data` axis) -> global
    arrays; identity in a single process, where jit places numpy inputs itself."""
    if mesh is None or jax.process_count() == 1:
        return tree
    from jax.experimental import multihost_utils

    return multihost_utils.host_local_array_to_global_array(tree, mesh, spec)


def to_local(tree, mesh: Mesh | None, spec: P):
    """Global arrays -> this process's share as numpy (the inverse of `to_global`)."""
    if mesh is not None and jax.process_count() > 1:
        from jax.experimental import multihost_utils

        tree = multihost_utils.global_array_to_host_local_array(tree, mesh, spec)
    return jax.tree.map(np.asarray, tree)


def gather(x: np.ndarray) -> np.ndarray:
    """Every process's `x` (same shape everywhere), stacked along a new first axis [P, ...]."""
    x = np.asarray(x)
    if jax.process_count() == 1:
        return x[None]
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(x))


def is_primary() -> bool:
    """Whether this process writes reports and logs (process 0)."""
    return jax.process_index() == 0
