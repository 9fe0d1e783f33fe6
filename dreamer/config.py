"""Configuration: nested frozen dataclasses, named presets, and `--set key=value` overrides.

This module imports nothing heavy, so the CLI can parse and validate a config before JAX loads.
A field made with `host_field` is a host field: it never reaches a jitted program, so runs that
differ only in host fields share compiled programs (`dreamer.programs`).
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any, Literal

from dreamer.errors import UserError

WorldOptionValue = int | float | bool | str


class ConfigError(UserError, ValueError):
    """A config key or value that is not valid; the message names the field and the fix."""


HOST = "host"
"""The metadata key of a host field (`host_field`)."""


def host_field(default: Any) -> Any:
    """A config field that is "host" only: it never reaches a jitted program (the host loop reads
    it, or passes it into one as an argument), so runs that differ only in host fields share
    compiled programs (`dreamer.programs.program_key`). Any other field is a program field: a
    change to it builds the programs again."""
    return dataclasses.field(default=default, metadata={HOST: True})


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Network sizes.

    Attributes:
      encoder: "auto" (MLP for vectors, conv for images), "mlp", "conv", "conv_mlp" or "atari"
        (EfficientZero's stride-2 ResNet down to 6x6 for 96x96 frames). "conv" keeps the latent
        an image (conv dynamics); "conv_mlp" puts two 3x3 convolutions of `channels` (ReLU) over
        the frame, flattens them into the MLP's vector latent, and keeps the MLP dynamics and
        heads: the conv's locality where the frame is read, at about the MLP's search cost.
      hidden: width of MLP layers (vector latents) and of the value-prefix LSTM input.
      latent_dim: size of a vector latent state.
      channels: channels of conv latents.
      num_blocks: residual blocks in the representation and dynamics.
      lstm_hidden: hidden size of the value-prefix LSTM.
      head_hidden: hidden width of the policy/value/value-prefix heads.
      projection_dim: width of the SimSiam projection and predictor.
      value_support: S of the categorical value support: with support_bins=0 its atoms are the
        integers in [-S, S] of h(value) (2S+1 atoms; EfficientZero V1, and V2 on Atari); with
        support_bins=N, N atoms evenly spaced over [h(-S), h(S)], so S is then the largest
        |value| represented (`dreamer.transforms.BinnedSupport`).
      reward_support: the same for the value prefix.
      support_bins: 0 (integer atoms of h) or N >= 2 atoms for both supports, evenly spaced in
        h-space over [h(-S), h(S)]: EfficientZero V2's `bins` over `range: [-S, S]`, which its
        code uses for DMC and Gym only (`ez/utils/format.py`, `DiscreteSupport`: on Atari the
        bins are ignored and the atoms are the integers of `range` in h-space).
      action_embedding: how the dynamics takes the action. 0: a one-hot vector (as planes for
        conv latents). D > 0: EfficientZero V2's learned D-wide embedding of a / A (a linear map,
        LayerNorm, ReLU; `ez/agents/models/base_model.py`, `DynamicsNetwork`), as planes for
        conv latents.
      memory: how the representation reads a world's history (`world_options.history=k`, the
        episode's last k observations joined along their last axis). "stack": as one observation
        (the frame stack). "gru": each of the k observations by the same encoder, then a GRU over
        the k encodings, oldest first, whose last state enters the latent: the order of what was
        seen is kept, as a recurrent representation keeps it, within the k-step window. Needs
        k >= 2 and a vector latent (vectors, tokens, or images with `encoder=mlp`/`conv_mlp`).
        "recurrent": a memory carried through the whole episode: each observation is encoded
        once and a GRU step folds it into the episode's memory (zeros at its start), which enters
        the latent beside the encoding. The actor carries each copy's memory from step to step,
        the replay stores the memory each row was acted on with, and the learner starts each
        sampled window from the stored memory `train.memory_burn_in` rows before it, recomputing
        the memory over those rows with the current network: R2D2's burn-in (Kapturowski et
        al., 2019), except that the loss's gradient goes back through the GRU's steps over them
        (and the encoder's with `train.memory_encoder_gradient`), where R2D2 takes none. Any
        history k >= 1; needs a vector latent.
    """

    encoder: Literal["auto", "mlp", "conv", "conv_mlp", "atari"] = "auto"
    hidden: int = 128
    latent_dim: int = 64
    channels: int = 32
    num_blocks: int = 1
    lstm_hidden: int = 64
    head_hidden: int = 64
    projection_dim: int = 128
    value_support: int = 20
    reward_support: int = 10
    support_bins: int = 0
    action_embedding: int = 0
    memory: Literal["stack", "gru", "recurrent"] = "stack"


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    """MCTS settings (mctx).

    Attributes:
      algorithm: "muzero" (PUCT with Dirichlet noise, EfficientZero), "gumbel" (EfficientZero V2),
        or "none": the planning-free ablation: act from the policy head alone, no search and no
        reanalysis; the policy learns by advantage-weighted regression on the n-step targets.
      num_simulations: simulations per root; each costs one latent model step (0 are spent when
        algorithm is "none").
      dirichlet_alpha, dirichlet_fraction: root noise (muzero only).
      pb_c_init, pb_c_base: PUCT constants (muzero only).
      max_num_considered_actions: Gumbel's m (gumbel only); 0: by the world's action count,
        EfficientZero V2's rule on Atari (2 below 4 actions, 4 below 16, else 8;
        `search.considered_actions`).
      q_normalisation: how the search normalises Q-values: "node", mctx's min-max over one
        node's children (PUCT: the parent and its siblings; Gumbel: the completed Qs; floor 1e-8),
        or "tree", EfficientZero's one min-max over the whole tree with the range floored at 0.01
        (`search.qtransform_tree_min_max`, `search.qtransform_tree_completed_by_mix_value`).
        With algorithm "none" nothing is searched and it is unused, so the planning-free
        ablation takes every preset as it is.
      q_floor: the floor of "tree"'s Q range, in value units (EfficientZero's 0.01): gaps
        between Qs smaller than it are not stretched to the full scale of the policy target.
      temperature: the acting temperature while collecting, at the start of training: muzero's
        visit-count temperature, or the policy head's with "none". Gumbel ignores it while
        collecting (unless `gumbel_temperature`): its root Gumbel noise and sequential halving
        pick the action, a sample of its improved policy (mctx's `gumbel_muzero_policy`).
        Evaluation's is `run.eval_temperature`.
      temperature_decay_steps: real steps over which the temperature halves twice (1, .5, .25);
        like `temperature`, it changes nothing while a Gumbel search collects, unless
        `gumbel_temperature`.
      gumbel_temperature: False (mctx, EfficientZero V2): a Gumbel search collects with Gumbel
        noise of scale 1 whatever the temperature. True: the noise's scale is the acting
        temperature (`temperature` and its decay), so collection turns greedier as it decays
        (argmax of x + T g, g ~ Gumbel, draws from softmax(x / T)). Evaluation (no noise) and
        reanalysis (scale 1) are unchanged.
    """

    algorithm: Literal["muzero", "gumbel", "none"] = "muzero"

    @property
    def simulations_per_root(self) -> int:
        """Latent model steps one search spends (0 without planning)."""
        return 0 if self.algorithm == "none" else self.num_simulations
    num_simulations: int = 16
    dirichlet_alpha: float = 0.3
    dirichlet_fraction: float = 0.25
    pb_c_init: float = 1.25
    pb_c_base: float = 19652.0
    max_num_considered_actions: int = 16
    q_normalisation: Literal["node", "tree"] = "node"
    q_floor: float = 0.01
    temperature: float = 1.0
    temperature_decay_steps: int = host_field(0)
    gumbel_temperature: bool = False


@dataclasses.dataclass(frozen=True)
class ReplayConfig:
    """Prioritized replay of per-copy trajectory streams.

    Attributes:
      capacity: rows kept per world copy (total transitions = capacity x num_envs).
      alpha: priority exponent (EfficientZero: 0.6).
      beta: importance-sampling exponent (EfficientZero: 0.4).
      beta_anneal_updates: learner updates over which beta rises linearly to 1 (EfficientZero:
        all its training, 120k updates); 0 keeps it constant.
      replacement: whether a batch may draw one start row twice (True) or draws distinct rows
        (False, EfficientZero's `replace=False`; `replay.sample`).
      priority_eps: added to |value error| to keep every row sampleable.
    """

    capacity: int = 100_000
    alpha: float = 0.6
    beta: float = 0.4
    beta_anneal_updates: int = 0
    replacement: bool = True
    priority_eps: float = 1e-6


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Learner, targets and reanalysis.

    Attributes:
      batch_size: sampled positions per update.
      unroll_steps: K, model steps unrolled per sample.
      td_steps: n of the n-step value target.
      off_policy_correction: shrink the TD horizon for old data (EfficientZero).
      off_policy_age_ratio: age (as a fraction of the run's real steps) per horizon step lost.
      value_target: "nstep" (EfficientZero) or "mixed" (EfficientZero V2: search value for old data).
      mixed_value_age: with value_target=mixed, the age in real steps from which a window's value
        target is the search value (V2's `mixed_value_threshold`: 5,000); 0 = where off-policy
        correction cut the window's TD horizon.
      mixed_value_after: with value_target=mixed, the learner update from which old data takes
        the search value; before it every target is the n-step return (V2's
        `start_use_mix_training_steps`: 30k).
      discount: gamma.
      time_limit: what a time-limit cut means for the value targets. "bootstrap": the return
        goes on past the cut with the value of the last state seen (the limit is not part of the
        task: partial-episode bootstrapping, Pardo et al., 2018). "terminal": the return ends
        there with nothing more (running out of steps is failure, as in goal tasks with a step
        budget whose observations do not show the steps left).
      value_prefix_horizon: the LSTM resets every this many unrolled steps (EfficientZero: 5).
      reanalyse_fraction: fraction of each batch whose policy targets come from fresh search.
      reanalyse_value: bootstrap with the reanalysing search's root value instead of the network's.
      reanalyse_batches: updates whose batches are sampled and reanalysed together, in one search
        call, before they are applied one by one (EfficientZero prepares batches ahead in parallel
        workers). 1 = each update samples with the latest priorities and reanalyses its own
        batch; G > 1 amortises the search's sequential simulations over G batches, whose
        priorities and target network are then up to G - 1 updates old. Must divide the updates
        of one learner phase, round(train_ratio x num_envs x collect_steps).
      reanalyse_pass_interval: learner updates between buffer-wide reanalysis passes
        (`dreamer.reanalyse`): stored rows re-searched in big batches with the target network,
        their policy targets and root values written into the replay. 0 = no pass (targets
        come from acting and from per-update reanalysis alone). A pass runs after the learner
        phase in which the update count crosses a multiple of it; set it to
        target_update_interval to re-search right after each target refresh.
      reanalyse_pass_new_rows: with the pass on, also search, before each learner phase, the
        stored rows whose targets the current target network did not make (the rows collected
        since the last pass, whose targets are the acting search's, made by the online network):
        every sampled position then reads the target network's search (`targets/fresh` 1.0),
        EfficientZero's convention. Off by default: minatar/breakout, seed 7, 100k real steps at
        the `minatar` preset, greedy over 100 episodes: 4.5 with it (`targets/fresh` 1.0, 3,457 s
        on a shared core) against 6.5 without (0.98-0.99); one seed
        (notebooks/results/reanalyse_pass_minatar/).
      reanalyse_pass_rows: rows (all streams counted) one pass re-searches, the stalest first;
        0 = every stored row.
      reanalyse_pass_chunk: roots per search call of a pass. On a 2-core CPU, minatar/breakout at
        the `minatar` preset, `dreamer bench dream` measured 0.60x / 0.64x / 0.61x / 0.53x of the
        network's limit at 64 / 128 / 256 / 1024 (the limit being the whole recurrent function
        the search calls, value prefix and policy head included).
      reanalyse_pass_order: among rows of equally old targets, re-search "newest" rows first or
        those of highest "priority" first. "priority" is also the most-sampled order: the replay
        samples a row with probability proportional to its priority ** alpha, so the highest
        priorities are the rows the learner reads most (the replay keeps no per-row count).
        How stale a target may be is set by reanalyse_pass_interval (updates between passes;
        at target_update_interval with reanalyse_pass_rows=0, no target is older than one
        target network) and reanalyse_pass_rows (rows per pass).
      optimizer: "adamw" or "sgd" (momentum 0.9, EfficientZero's schedule).
      learning_rate: peak learning rate.
      lr_warmup_updates: linear warm-up updates.
      lr_decay_updates: one step decay by 10x this many updates after the warm-up ends
        (EfficientZero's convention); 0 means never.
      weight_decay: L2 / decoupled weight decay.
      max_grad_norm: global gradient norm clip.
      policy_weight, value_weight, value_prefix_weight, consistency_weight: loss weights.
      entropy_weight: weight of the policy entropy bonus (EfficientZero V2's `entropy_coeff`):
        the loss gains -weight x the entropy of the policy head's softmax at the root and at each
        unrolled step, counted where the policy loss is (live steps), with the same per-step
        scale (`loss_scale`) and importance weights; logged as `loss/entropy` (the negative
        entropy). 0 = off. V2 adds it for its continuous-action worlds only (DMC, Gym).
      legal_policy_loss: the policy loss's softmax over each position's legal actions only, so an
        illegal action's logit gets no gradient; False: over all actions (EfficientZero's and
        LightZero's convention), which drives an illegal action's logit towards -inf. A continual
        run (`run.worlds`) sets it True unless told otherwise: its worlds lack some of the common
        actions, and over all actions an action a later world needs starts there with a prior
        search cannot lift (breakout then space invaders, 30k real steps each, seed 0: space
        invaders 0.0 after its phase, `fire` at a logit of -48; 7.0 with it True). Elsewhere it
        stays False: text/coin, 10k real steps, seed 0, 100 greedy episodes: 0.87 over all
        actions, 0.53 over the legal ones (the network then no longer learns which commands are
        valid, and the search's inner nodes, which see no mask, spend simulations on them).
        Files: notebooks/results/legal_policy_loss/ and continual_minatar/.
      loss_scale: each unrolled step's losses count 1/K; the root's count 1 ("muzero", MuZero's
        pseudocode) or 1/K as well ("efficientzero": EfficientZero V1/V2 and LightZero scale the
        whole loss by 1/K, so with SGD their learning rate assumes it).
      target_update_interval: updates between target-network refreshes.
      train_ratio: updates per real env step.
      learning_starts: real steps collected before the first update.
      nan_policy: "stop" (checkpoint and exit) or "skip" (drop the update) on non-finite loss.
      augment_shift: image augmentation of the learner's encoder inputs (the unroll's first
        observation and the consistency loss's targets, never acting or search targets;
        `dreamer.augment`): pixels of edge padding before a random crop back to the image size,
        drawn per sample. EfficientZero on Atari: 4. 0 = off. Image worlds only.
      augment_intensity: scale s of the per-sample intensity factor 1 + s * clip(N(0, 1), -2, 2)
        (after the shift). EfficientZero on Atari: 0.05. 0 = off. Image worlds only.
      memory_burn_in: with `model.memory="recurrent"`, rows before each sampled window over which
        the learner recomputes the memory from the one stored there (fewer where the episode
        starts later, or the stream's stored rows begin later); the GRU's gradient flows through
        them, so it is also how far back the memory learns what to keep. Unused otherwise.
      memory_targets: with `model.memory="recurrent"`, the memory the targets' network (bootstrap
        values, reanalysis) reads at each row: "recomputed" by the target network over the
        burn-in and the window, as the loss's is by the online network; or "stored", the memory
        the row was acted with, as the replay holds it (R2D2's stored state, without burn-in),
        which spares the targets every recomputation: on `twx/coin` the recomputed memory
        made the learner about 4.8x slower than no memory (notebooks/results/twx_coin_history/).
      memory_encoder_gradient: with `model.memory="recurrent"`, whether the loss's gradient
        reaches the observation encoder through the burn-in rows' encodings (True), or only
        through the GRU's steps over them (False: the encoder still learns from each window's
        first row, and the backward pass skips the encoder on the burn-in rows). False made a
        `twx/coin` run 1.5x faster (2.84 real steps/s against 1.90, side by side) and ended
        `text/coin` without marks (10k real steps) at 0.95 and 0.95 on seeds 0 and 2, against
        0.96 and 0.89 with it (notebooks/results/memory_text_coin/).
    """

    batch_size: int = 128
    unroll_steps: int = 5
    td_steps: int = 5
    off_policy_correction: bool = True
    off_policy_age_ratio: float = 0.3
    value_target: Literal["nstep", "mixed"] = "nstep"
    mixed_value_age: int = 0
    mixed_value_after: int = 0
    discount: float = 0.997
    time_limit: Literal["bootstrap", "terminal"] = "bootstrap"
    value_prefix_horizon: int = 5
    reanalyse_fraction: float = 0.99
    reanalyse_value: bool = False
    reanalyse_batches: int = 1
    reanalyse_pass_interval: int = host_field(0)
    reanalyse_pass_new_rows: bool = host_field(False)
    reanalyse_pass_rows: int = host_field(0)
    reanalyse_pass_chunk: int = 128
    reanalyse_pass_order: Literal["newest", "priority"] = "newest"
    optimizer: Literal["adamw", "sgd"] = "adamw"
    learning_rate: float = 3e-3
    lr_warmup_updates: int = 100
    lr_decay_updates: int = 0
    weight_decay: float = 1e-4
    max_grad_norm: float = 5.0
    policy_weight: float = 1.0
    value_weight: float = 0.25
    value_prefix_weight: float = 1.0
    consistency_weight: float = 2.0
    entropy_weight: float = 0.0
    legal_policy_loss: bool = False
    loss_scale: Literal["muzero", "efficientzero"] = "muzero"
    target_update_interval: int = 100
    train_ratio: float = 0.25
    learning_starts: int = host_field(500)
    nan_policy: Literal["stop", "skip"] = "stop"
    augment_shift: int = 0
    augment_intensity: float = 0.0
    memory_burn_in: int = 8
    memory_targets: Literal["recomputed", "stored"] = "recomputed"
    memory_encoder_gradient: bool = False


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """How a run proceeds: collection, evaluation, checkpoints.

    Attributes:
      real_steps: total real env steps (agent decisions) to collect.
      num_envs: parallel world copies collected from.
      collect_steps: steps per copy between learner phases.
      eval_interval: real steps between evaluations.
      eval_episodes: episodes per evaluation.
      eval_temperature: how evaluation picks actions from the search (no root noise either way).
        0 plays the search's best action (greedy, the Atari protocol). T > 0 samples the search
        policy sharpened to p^(1/T): the better policy where observations do not show everything
        the agent needs to remember, since a deterministic policy of the observation alone can
        walk the same loop until the time limit (text games without a map, e.g. twx/coin).
      checkpoint_interval: real steps between checkpoints.
      keep_checkpoints: how many checkpoints to keep.
      devices: devices the learner and the collectors are split over (data parallel): 0 means all
        devices present (of all processes in a distributed run), 1 a single device.
      worlds: continual learning: a comma-separated sequence of worlds that one agent, with one
        network, learns in order, `real_steps_each` real steps each (`dreamer train --worlds
        A,B,C`); "" (default) trains on `world` alone. The worlds are seen through one
        observation shape and action set (`worlds.padded`); `world` is the first of them and
        `real_steps` is `real_steps_each` times their number (`override` sets both).
      real_steps_each: real steps of each world of `worlds`; a multiple of `num_envs`.
      rehearsal: with `worlds`, whether the replay keeps the earlier worlds' experience when the
        next world starts (True, default) or is emptied (False). Kept by default: the replay is
        a fixed ring either way, so rehearsal costs no memory and no real step, the earlier
        worlds' rows age out first-in first-out as the ring fills, and replaying them is the
        simplest guard against forgetting; False is the strict sequential setting, for
        measuring forgetting.
      dream_between: with `worlds`, learner updates dreamed on the replay alone at the end of
        each phase but the last, before the evaluation on every world (`dreamer dream`'s
        schedule: a whole-replay reanalysis pass first and after each target refresh; counted
        as `dream_updates`, no real step). With rehearsal they replay every earlier world's
        memory. 0 (default): no dream; a multiple of the updates per learner phase.
    """

    real_steps: int = host_field(10_000)
    num_envs: int = 8
    collect_steps: int = 8
    eval_interval: int = host_field(1_000)
    eval_episodes: int = host_field(10)
    eval_temperature: float = host_field(0.0)
    checkpoint_interval: int = host_field(2_000)
    keep_checkpoints: int = host_field(2)
    devices: int = 0
    worlds: str = host_field("")
    real_steps_each: int = host_field(0)
    rehearsal: bool = host_field(True)
    dream_between: int = host_field(0)

    @property
    def world_sequence(self) -> tuple[str, ...]:
        """The worlds of a continual run in order; () for a single-world run."""
        return tuple(w.strip() for w in self.worlds.split(",")) if self.worlds else ()


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything that defines a run.

    Attributes:
      world: registered world name (`worlds.make`).
      world_options: options the world is built with, as sorted (name, value) pairs, e.g.
        `(("rooms", 8),)` for `worlds.make("text/coin", rooms=8)`; set one with
        `--set world_options.rooms=8`.
      seed: seeds the world, the networks and the search.
    """

    world: str = "cartpole"
    world_options: tuple[tuple[str, WorldOptionValue], ...] = ()
    seed: int = host_field(0)
    model: ModelConfig = ModelConfig()
    search: SearchConfig = SearchConfig()
    replay: ReplayConfig = ReplayConfig()
    train: TrainConfig = TrainConfig()
    run: RunConfig = RunConfig()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data; `world_options` as a {name: value} dict."""
        data = dataclasses.asdict(self)
        data["world_options"] = self.world_kwargs()
        return data

    def world_kwargs(self) -> dict[str, WorldOptionValue]:
        """`world_options` as keyword arguments for `worlds.make`."""
        return dict(self.world_options)


def _replace(cfg, **sections):
    return dataclasses.replace(
        cfg,
        **{
            name: dataclasses.replace(getattr(cfg, name), **fields) if isinstance(fields, dict) else fields
            for name, fields in sections.items()
        },
    )


def small() -> Config:
    """Small vector and grid worlds (cartpole, catch, gym classic control) on a laptop CPU."""
    return _replace(
        Config(),
        model=dict(hidden=128, latent_dim=64, value_support=20, reward_support=5),
        # EfficientZero's one min-max over the whole tree (range floored at 0.01): cartpole, 10k
        # real steps, seeds 0-9, 10 greedy episodes every 1k (notebooks/results/cartpole_10k/):
        # final >= 475 on 6 of 10 seeds against 5 with mctx's per-node min-max, mean final 466
        # against 389, first >= 475 at a median of 5,536 real steps against 10,000 (4 seeds
        # never), in the same wall time.
        search=dict(num_simulations=16, temperature_decay_steps=4_000, q_normalisation="tree"),
        train=dict(
            batch_size=128,
            discount=0.997,
            td_steps=10,
            # One update per real step, and the learning rate x0.1 after 4,000 updates (about
            # 4.4k real steps): cartpole, 10k real steps, seeds 0-4, 10 greedy episodes every 1k
            # (notebooks/results/cartpole_10k/): the final evaluation >= 475 on 4 of 5 seeds,
            # first >= 475 at a median of 5,056 real steps; at 0.5 updates per step and a
            # constant rate, 2 of 5 and 10,000 (two seeds never), in half the wall time. At 0.25,
            # seeds 0 and 3 stayed at 130-160 for all 10k steps (the cart drifted away).
            train_ratio=1.0,
            lr_decay_updates=4_000,
            learning_starts=400,
            # EfficientZero's 99%: with half the batch on the policy targets stored at collection
            # time, early exploratory play kept pulling cartpole back to a drifting policy.
            reanalyse_fraction=0.99,
            learning_rate=3e-3,
            target_update_interval=100,
        ),
        run=dict(real_steps=6_000, num_envs=8, collect_steps=8),
    )


def tiny() -> Config:
    """Everything shrunk for tests: runs a few hundred updates in seconds on a CPU."""
    return _replace(
        small(),
        model=dict(hidden=32, latent_dim=16, channels=8, lstm_hidden=16, head_hidden=16,
                   projection_dim=32, value_support=5, reward_support=3),
        # mctx's per-node Q normalisation, the setting the tests' learning bounds were measured
        # with: with `small`'s tree-wide one, catch at 3,000 real steps (seed 0) ended at -0.1
        # against >= 0.6, and the T-maze's GRU memory at 0.44 against >= 0.9.
        search=dict(algorithm="muzero", num_simulations=8, temperature_decay_steps=0,
                    q_normalisation="node"),
        replay=dict(capacity=2_000),
        train=dict(batch_size=32, unroll_steps=3, td_steps=3, discount=0.99, learning_starts=100,
                   target_update_interval=20, lr_warmup_updates=10, lr_decay_updates=0,
                   reanalyse_fraction=0.5,
                   # one update per real step: catch at 3,000 real steps (20 greedy episodes)
                   # reached 1.0 on seeds 0-4; at 0.5, 1.0 / -0.7 / 0.4 / -0.8 / 1.0.
                   train_ratio=1.0),
        run=dict(real_steps=3_000, num_envs=4, collect_steps=8, eval_interval=1_000,
                 eval_episodes=10, checkpoint_interval=1_000),
    )


def minatar() -> Config:
    """MinAtar games on a laptop CPU at EfficientZero's budget: one update of 128 sampled
    positions per 2 real steps, about 99% of them with policy targets the current target network
    made (EfficientZero: one update of 256 per real step, 99% reanalysed).

    The fresh targets come from the buffer-wide reanalysis pass (`dreamer.reanalyse`), not from
    searching inside every update: the target network is refreshed every 128 updates, which is
    every second learner phase of 64 (16 copies x 8 steps x 0.5), and the pass re-searches the
    whole replay right after each refresh (`reanalyse_pass_interval=128`), so the next 128
    updates read targets of the current target network (`targets/fresh` 0.98-0.99 from 8k real
    steps on; the rest are the newest rows' acting targets, see `reanalyse_pass_new_rows`). A
    stored row is then searched once per refresh instead of once per sampling.
    minatar/breakout, seed 7, 100k real steps, greedy (10 episodes): with the pass 6.0-7.0 from
    25k to 90k (dips to 3.5 and 4.5) and 1,640 s for its first 92k; with per-update reanalysis
    3.0-3.6 until 55k and 6.0 at 100k in 3,226 s; rejax's DQN 7.5. A pass every 100 updates
    with the refresh inside a phase left a third of the targets stale (`targets/fresh` 0.61-0.81)
    and reached 6.0 at 100k in 2,256 s. Files: notebooks/results/reanalyse_pass_minatar/.

    The network is an MLP over the flattened 10x10xC frame (`model.encoder=mlp`): on one core of a
    2-core CPU its learner ran 31x the updates/s of the 16-channel conv stack at batch 128 without
    reanalysis (72.9 vs 2.36), and `dreamer bench train` measured it (99% reanalysed in the update) at 23.3 updates/s
    against 0.223 for the conv stack at batch 256 and 99% reanalysed (the budget the conv preset
    could not afford), in one process.
    minatar/breakout, seed 7, 100k real steps, greedy (10 episodes): the MLP with per-update reanalysis 6.0 in 3,226 s
    on one core (eval 3.0 from 10k to 30k, 3.5 at 50k, 5.6 at 75k); the previous preset (the conv
    stack, one update of 64 per 10 real steps, 25% reanalysed) 4.6 in 1,870 s; the MLP at that
    small budget 4.2 in 767 s; rejax's DQN (seed 0) 7.5. Files: notebooks/results/minatar_preset/.
    The wall time grew from about 31 to 54 minutes per 100k real steps.

    Gumbel search (EfficientZero V2): its policy target is the improved policy from completed
    Q-values, not visit counts of 16 simulations. minatar/breakout at 50k real steps, greedy,
    seeds 0 / 1 with the conv preset: Gumbel 4.0 / 3.5 (100 episodes), MuZero 3.2 / 0.8 (10);
    random play 0.40. (On cartpole at the `small` preset Gumbel was the slower one: 3 of 5 seeds
    reached 200 within 3k real steps, MuZero 4 of 5; so `small` keeps MuZero.)
    """
    return _replace(
        small(),
        model=dict(encoder="mlp", hidden=128, latent_dim=64, value_support=20,
                   reward_support=5),
        # mctx's per-node Q normalisation: the tree-wide one (`small`'s) scored lower on Breakout
        # (seed 1) and Seaquest (seed 0) at 100k (notebooks/results/minatar_100k/tree_*)
        search=dict(algorithm="gumbel", num_simulations=16, temperature_decay_steps=40_000,
                    q_normalisation="node"),
        train=dict(discount=0.997, td_steps=5, batch_size=128, train_ratio=0.5,
                   learning_starts=1_000, reanalyse_fraction=0.0, reanalyse_pass_interval=128,
                   target_update_interval=128, lr_decay_updates=0),
        replay=dict(capacity=20_000),
        run=dict(real_steps=50_000, num_envs=16, collect_steps=8, eval_interval=5_000,
                 checkpoint_interval=5_000),
    )


def atari100k() -> Config:
    """EfficientZero V1 on Atari 100k (Ye et al., 2021, Table 6; its code's
    `config/atari/__init__.py` and `core/config.py`, github.com/YeWR/EfficientZero), field by field:

    - model: the stride-2 ResNet down to 6x6 (`downsample`), 64 channels, 1 block; heads of 16
      reduced channels and one hidden layer of 32 (`resnet_fc_*_layers=[32]`); value-prefix LSTM
      512 (`lstm_hidden_size`); projection 1024 (`proj_hid`, `proj_out`, `pred_out`); value and
      reward supports [-300, 300] (`DiscreteSupport(-300, 300)`).
    - search: PUCT, 50 simulations, Dirichlet alpha 0.3 and fraction 0.25
      (`root_exploration_fraction`), c1 1.25 and c2 19652; Q min-max over the whole tree with the
      range floored at 0.01 (`value_delta_max`: q_normalisation="tree"). Acting temperature 1,
      then 0.5 after half of training and 0.25 after three quarters (`change_temperature`; the
      whole run is the span, so temperature_decay_steps=0).
    - train: batch 256, K = 5, n = 5; discount 0.997 per frame raised to the frame skip,
      0.997**4 per agent step (`self.discount **= self.frame_skip`); off-policy correction with
      `auto_td_steps_ratio` 0.3; value-prefix horizon 5; 99% of policy targets reanalysed
      (`revisit_policy_search_rate`); SGD, momentum 0.9, lr 0.2, warm-up 1% of 100k updates,
      x0.1 after 100k, weight decay 1e-4, gradient clip 5; loss weights value 0.25, consistency 2,
      policy and reward 1, the whole loss scaled by 1/K (`gradient_scale`, so lr 0.2 applies to
      it: loss_scale="efficientzero"); target network every 200 updates (`target_model_interval`); learning
      from 2,000 transitions (`start_transitions` 8k frames / 4); augmentation: random shift of
      4 pixels and intensity 0.05 (`augmentation=['shift', 'intensity']`).
    - replay: priorities alpha 0.6, beta 0.4 (`priority_prob_*`) annealed to 1 over the 120k
      updates (`beta_schedule`, LinearSchedule over `training_steps + last_steps`); the 100k
      transitions all kept.
    - run: 100k real steps; 4 copies stepped together (`p_mcts_num=4` in its Atari train.sh);
      32 evaluation episodes (`test_episodes`) every 10k.
    - world (`worlds.atari`): frame skip 4 with max-pooling, 4 stacked 96x96 frames, no-op starts
      (at most 30), sticky actions off, a life loss ends a training episode only
      (`episode_life`), rewards clipped to their sign in training (`clip_reward`), episodes cut
      at 27,000 agent steps (108k frames, the final test's cap).

    Kept different on purpose:
    - Grey frames, not RGB (`gray_scale=False` there): the replay keeps each row's 4-frame stack on
      the device, 3.7 GB for 100k rows grey and 11 GB in colour, which would not fit a 24 GB card
      beside the learner. EfficientZero keeps compressed frames in host memory.
    - Training episodes are cut at 27,000 agent steps, not 3,000 (`max_moves` 12k frames): one
      cap for training and evaluation; a cap is a time limit the value targets bootstrap past.
    - One batch reanalysed per search (train.reanalyse_batches=1), so the preset runs on a 24 GB
      card and on a CPU with 24 GiB. XLA's memory analysis of the learner program, the replay
      included: one batch at a time 7.3 GB on an H200 and 10.3 GB on a CPU; each phase's 5
      batches searched together 14.4 GB and 29.2 GB. On the H200, `dreamer bench gpu` measured
      5 batches per search at 1.39x the updates/s, and an H100 at 1.29x
      (notebooks/results/atari_gpu): on a GPU, `--set train.reanalyse_batches=5`.
    - Fresh targets by per-update reanalysis, as EfficientZero makes them, not by buffer-wide
      passes (`train.reanalyse_pass_interval`). On the H100 the learner without reanalysis ran
      52.7 updates/s and a pass 33.6k roots/s at 1,024 roots per call: a pass over every stored
      row each 200 updates projects to about 1.0 h per game against 1.95 h, with targets up to
      one target network old; its effect on score is not measured.
    """
    return _replace(
        Config(),
        model=dict(encoder="atari", channels=64, num_blocks=1, lstm_hidden=512,
                   head_hidden=32, projection_dim=1024, value_support=300, reward_support=300),
        search=dict(algorithm="muzero", num_simulations=50, dirichlet_alpha=0.3,
                    dirichlet_fraction=0.25, q_normalisation="tree", temperature_decay_steps=0),
        replay=dict(capacity=25_000, alpha=0.6, beta=0.4, beta_anneal_updates=120_000),
        train=dict(batch_size=256, reanalyse_batches=1, unroll_steps=5, td_steps=5,
                   discount=0.997**4, value_prefix_horizon=5, reanalyse_fraction=0.99,
                   optimizer="sgd", learning_rate=0.2, lr_warmup_updates=1_000,
                   lr_decay_updates=100_000, weight_decay=1e-4, max_grad_norm=5.0,
                   consistency_weight=2.0, value_weight=0.25, target_update_interval=200,
                   train_ratio=1.2, learning_starts=2_000, augment_shift=4,
                   augment_intensity=0.05, loss_scale="efficientzero"),
        # 25k rows per copy, so the replay holds all 100k real steps.
        run=dict(real_steps=100_000, num_envs=4, collect_steps=1, eval_interval=10_000,
                 eval_episodes=32, checkpoint_interval=10_000),
    )


def atari100k_v2() -> Config:
    """EfficientZero V2 on Atari 100k (Wang et al., 2024; its code's `ez/config/exp/atari.yaml`,
    github.com/Shengjiewang-Jason/EfficientZeroV2), as changes to `atari100k`:

    - search: Gumbel with 16 simulations and m considered actions (`num_top_actions`) set by
      the action count as V2 sets it (`ez/agents/ez_atari.py`: 2 below 4 actions, 4 below 16,
      else 8; search.max_num_considered_actions=0), c_visit 50 and c_scale 0.1 (mctx's
      defaults), Q range floor 0.01 (`value_minmax_delta`, which mctx's Gumbel transform does
      not take: it keeps its own). A difference kept: V2 also drops to 4 simulations below 4
      actions (Freeway's 3); here every game searches 16, as the ledger's per-root cost is one
      number per config.
    - train: the mixed value target (`value_target: 'mixed'`) with the reanalysing search's root
      value; loss weights value 0.25 and consistency 5: `value_loss_coeff` 0.5 times the 0.5
      that V2's `Value_loss` (`ez/utils/loss.py`) weighs every value error by with
      `use_IQL: False`; `consistency_coeff` 5.
    - replay: priorities alpha 1 and beta 1 (`priority_prob_alpha`, `priority_prob_beta`).
    - model: the dynamics takes a learned 16-wide embedding of the action
      (model.action_embedding=16: `model.action_embedding: True`, `action_embedding_dim: 16`;
      the embedding is `DynamicsNetwork` in `ez/agents/models/base_model.py`: a / A through a
      1x1 convolution, LayerNorm over [16, 6, 6], ReLU). Value and reward supports as V1's, the
      integers in [-300, 300] of h(x), 601 atoms (model.value_support=reward_support=300,
      support_bins=0): the yaml's `value_support` / `reward_support` say `range: [-300, 300]`,
      `scale: 1`, `bins: 51`, but `DiscreteSupport` (`ez/utils/format.py`) reads `bins` only
      for DMC and Gym; for `env: Atari` its atoms are `np.arange(-300, 301, 1)` in h-space.
    - train: no entropy bonus (train.entropy_weight=0): the yaml's `entropy_coeff: 5e-3` enters
      the loss only `if self.config.env.env in ['DMC', 'Gym']` (`ez/agents/base.py`,
      `update_weights`); on Atari its entropy term is zeros.
    - run: 10 evaluation episodes (`eval_n_episode`).

    - train: the search value for data older than 5,000 transitions, and only from update 30k
      on (`mixed_value_threshold`, `start_use_mix_training_steps`; its agent's loss takes the
      n-step target everywhere before that).
    """
    base = atari100k()
    return _replace(
        base,
        model=dict(value_support=300, reward_support=300, support_bins=0, action_embedding=16),
        search=dict(algorithm="gumbel", num_simulations=16, max_num_considered_actions=0,
                    q_normalisation="node"),
        train=dict(value_target="mixed", mixed_value_age=5_000, mixed_value_after=30_000,
                   reanalyse_value=True, value_weight=0.25, consistency_weight=5.0,
                   entropy_weight=0.0),
        replay=dict(alpha=1.0, beta=1.0),
        run=dict(eval_episodes=10),
    )


def text() -> Config:
    """Generated and TextWorld text adventures (`text/*`, `textworld/*`; `twx` builds on it): a
    token encoder (`model.channels` wide), the recurrent memory of the whole episode, a discount
    that prefers short solutions of the short sparse episodes, and 100 evaluation episodes so a
    success rate reads to about +-5%.

    The memory, 99% of each batch reanalysed and T = 1 while collecting are set together, from
    runs at 50k (text/quest) and 20k (text/coin) real steps, greedy over 300 evaluation games
    (notebooks/results/text_quest/, notebooks/results/text_preset_memory/): text/quest seeds
    0 / 1 / 2 won 0.98 / 0.98 / 0.99, where the same settings without the memory won 0.85 /
    0.76 (seeds 0 / 1) and the earlier preset 0.75 (seed 0); every game those lost was a loop
    through rooms it had already explored. text/coin won 0.997 on seeds 0 and 1 at 20k. The
    memory costs wall time: about 2.2-2.4x the memoryless settings' on this project's CPU
    (text/quest 50k: 7,026 and 6,988 s on one core against 2,933 and 3,281 s).
    """
    return _replace(
        small(),
        model=dict(hidden=128, latent_dim=64, channels=32, value_support=10, reward_support=5,
                   memory="recurrent"),
        # mctx's per-node Q normalisation, what every text result here was measured with (the
        # tree-wide one, `small`'s, is unmeasured on text). The acting temperature stays 1 through
        # the first 50k real steps (it halves at half of temperature_decay_steps), as in the runs
        # the docstring cites; the earlier span, 10k, acted at 0.25 from 7.5k on.
        search=dict(algorithm="muzero", num_simulations=16, temperature_decay_steps=100_000,
                    q_normalisation="node"),
        # Batches of 64 at one update per 2 real steps. text/coin, 20k real steps, 100 greedy
        # episodes (random play wins 0.62), a quarter reanalysed then: one update per 2 steps won
        # 0.99 (seed 0); per 4 steps 0.89, 0.86 (seeds 1, 2); batches of 128 at one per 8 steps
        # 0.84 (seed 0).
        train=dict(discount=0.97, td_steps=10, batch_size=64, train_ratio=0.5,
                   learning_starts=1_000, reanalyse_fraction=0.99, lr_decay_updates=0),
        replay=dict(capacity=20_000),
        run=dict(real_steps=20_000, num_envs=16, collect_steps=8, eval_interval=2_000,
                 eval_episodes=100, checkpoint_interval=5_000),
    )


def twx() -> Config:
    """TextWorldExpress games (`twx/*`): the `text` preset with Gumbel search, evaluated by sampling
    the search policy (T = 1). Their observations do not show which rooms were visited (the
    `history` field holds the last 4 commands), so one fixed command per observation walks loops.
    With PUCT the prior collapsed onto commands that change nothing (`inventory`, `look around`:
    entropy 0.93 nats against 2.04 for uniform over the valid ones); Gumbel's improved-policy
    target keeps it spread. twx/coin, 20k real steps, seeds 0 / 1, 300 test-fold games: sampled
    0.50 / 0.53 against 0.38-0.43 for uniform-random valid commands on the same games; greedy
    0.26 / 0.18 (100 games). The `text` preset (PUCT) won 0.07 greedy or sampled.

    It keeps the memoryless representation and a quarter of each batch reanalysed, what those
    runs had, where `text` now carries the recurrent memory and 99%: on twx/coin (20k, seed 0,
    notebooks/results/twx_coin_history/) the memory won 0.23 greedy over 300 games and 0.24
    sampled at its last evaluation, against 0.25 and 0.48 without it; 99% is unmeasured here."""
    return _replace(text(), model=dict(memory="stack"),
                    search=dict(algorithm="gumbel", temperature_decay_steps=10_000),
                    train=dict(reanalyse_fraction=0.25), run=dict(eval_temperature=1.0))


PRESETS = {
    "small": small,
    "tiny": tiny,
    "minatar": minatar,
    "atari100k": atari100k,
    "atari100k-v2": atari100k_v2,
    "text": text,
    "twx": twx,
}


def default_preset(world: str) -> str:
    """The preset a world gets when none is named."""
    if world.startswith("minatar/"):
        return "minatar"
    if world.startswith("atari/"):
        return "atari100k"
    if world.startswith("twx/"):
        return "twx"
    if world.startswith(("text/", "textworld/")):
        return "text"
    return "small"


def preset(name: str) -> Config:
    """Returns the preset `name` or raises ConfigError listing the presets."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name, PRESETS, n=2)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown preset {name!r}.{hint} Presets: {', '.join(PRESETS)}.")
    return PRESETS[name]()


def config_from_dict(data: dict[str, Any]) -> Config:
    """Rebuilds a Config from `Config.to_dict()` output (e.g. a run's config.json)."""
    types = _field_types(Config)
    fields = {}
    for name, value in data.items():
        if name not in types:
            raise ConfigError(f"config has an unknown field {name!r}")
        kind = types[name]
        if name == "world_options":
            fields[name] = _world_options(value)
        elif dataclasses.is_dataclass(kind):
            known = _field_types(kind)
            unknown = set(value) - set(known)
            if unknown:
                raise ConfigError(f"config section {name!r} has unknown fields {sorted(unknown)}")
            fields[name] = kind(**value)
        else:
            fields[name] = value
    cfg = Config(**fields)
    validate(cfg)
    return cfg


def _world_options(value: Any) -> tuple[tuple[str, WorldOptionValue], ...]:
    items = value.items() if isinstance(value, dict) else value
    try:
        pairs = tuple(sorted((str(k), v) for k, v in items))
    except (TypeError, ValueError):
        raise ConfigError(f"config field 'world_options' must map option names to values, "
                          f"got {value!r}") from None
    for k, v in pairs:
        if not isinstance(v, (int, float, bool, str)):
            raise ConfigError(f"world_options.{k}: a world option is a number, a bool or a "
                              f"string, got {v!r}")
    return pairs


def parse_world_option(text: str) -> WorldOptionValue:
    """A `--set world_options.X=text` value: an int, a float, true/false, else the string."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text.replace("_", ""))
        except ValueError:
            pass
    return text


def _field_types(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _parse_value(key: str, text: str, kind: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin is Literal:
        choices = typing.get_args(kind)
        if text not in choices:
            raise ConfigError(f"--set {key}={text}: must be one of {', '.join(map(str, choices))}")
        return text
    try:
        if kind is bool:
            low = text.lower()
            if low not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return low in ("true", "1", "yes")
        if kind is int:
            return int(text.replace("_", ""))
        if kind is float:
            return float(text)
        if kind is str:
            return text
    except ValueError:
        raise ConfigError(
            f"--set {key}={text}: expected {kind.__name__}, got {text!r}"
        ) from None
    raise ConfigError(f"--set {key}: field of type {kind} cannot be set from the command line")


def override(cfg: Config, assignments: list[str]) -> Config:
    """Applies `section.field=value` assignments (e.g. `search.num_simulations=8`).

    In a continual run (`run.worlds`), `world` becomes the first world of the sequence and
    `run.real_steps` becomes `run.real_steps_each` times the number of worlds; assigning either
    to anything else is refused."""
    assigned = {}
    for assignment in assignments:
        if "=" not in assignment:
            raise ConfigError(f"--set {assignment!r}: expected key=value, e.g. search.num_simulations=8")
        key, text = assignment.split("=", 1)
        parts = key.strip().split(".")
        assigned[key.strip()] = text
        top = _field_types(Config)
        if len(parts) == 1 and parts[0] in ("world", "seed"):
            cfg = dataclasses.replace(cfg, **{parts[0]: _parse_value(key, text, top[parts[0]])})
            continue
        if parts[0] == "world_options":
            if len(parts) != 2 or not parts[1].isidentifier():
                raise ConfigError(f"--set {key}: a world option is set as "
                                  "world_options.NAME=VALUE, e.g. world_options.rooms=8")
            options = dict(cfg.world_options)
            options[parts[1]] = parse_world_option(text)
            cfg = dataclasses.replace(cfg, world_options=_world_options(options))
            continue
        all_keys = [
            f"{s}.{f}" for s in ("model", "search", "replay", "train", "run")
            for f in _field_types(top[s])
        ] + ["world_options.NAME"]
        if len(parts) != 2 or key not in all_keys:
            close = difflib.get_close_matches(key, all_keys, n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(f"--set {key}: unknown config key.{hint}")
        section, name = parts
        kind = _field_types(top[section])[name]
        value = _parse_value(key, text, kind)
        cfg = dataclasses.replace(
            cfg, **{section: dataclasses.replace(getattr(cfg, section), **{name: value})}
        )
    cfg = _continual_fields(cfg, assigned)
    validate(cfg)
    return cfg


def _continual_fields(cfg: Config, assigned: dict[str, str]) -> Config:
    """A continual run's `world` (its first world), `run.real_steps` (the worlds' budgets added
    up) and, where `run.worlds` is assigned, `train.legal_policy_loss` (True unless assigned
    too), refusing an assignment of the first two that says otherwise."""
    sequence = cfg.run.world_sequence
    if not sequence or not all(sequence):
        return cfg  # validate names the problem
    total = cfg.run.real_steps_each * len(sequence)
    if "world" in assigned and cfg.world != sequence[0]:
        raise ConfigError(f"--set world={cfg.world}: a continual run's world is the first of "
                          f"run.worlds ({sequence[0]}); drop it")
    if "run.real_steps" in assigned and cfg.run.real_steps != total:
        raise ConfigError(
            f"--set run.real_steps={cfg.run.real_steps}: a continual run's budget is "
            f"run.real_steps_each x {len(sequence)} worlds = {total}; set run.real_steps_each")
    train = cfg.train
    # see TrainConfig.legal_policy_loss; only where the sequence is set, so that overriding a
    # continual run's saved config (`train --resume --out RUN`) keeps the value it was run with
    if "run.worlds" in assigned and "train.legal_policy_loss" not in assigned:
        train = dataclasses.replace(train, legal_policy_loss=True)
    return dataclasses.replace(cfg, world=sequence[0], train=train,
                               run=dataclasses.replace(cfg.run, real_steps=max(total, 1)))


def flatten_config(config: dict, prefix: str = "") -> dict:
    """A nested config dict as {"section.field": value} (the keys `--set` takes)."""
    out = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flatten_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def updates_per_phase(cfg: Config) -> int:
    """Updates the trainer applies in one jitted call, after each collection phase of
    num_envs x collect_steps real steps (at least 1; a fractional ratio is carried over)."""
    return max(1, round(cfg.train.train_ratio * cfg.run.num_envs * cfg.run.collect_steps))


def validate(cfg: Config) -> None:
    """Raises ConfigError naming the first invalid value."""
    positive = {
        "run.real_steps": cfg.run.real_steps,
        "run.num_envs": cfg.run.num_envs,
        "run.collect_steps": cfg.run.collect_steps,
        "run.eval_interval": cfg.run.eval_interval,
        "run.checkpoint_interval": cfg.run.checkpoint_interval,
        "run.keep_checkpoints": cfg.run.keep_checkpoints,
        "search.num_simulations": cfg.search.num_simulations,
        "train.batch_size": cfg.train.batch_size,
        "train.unroll_steps": cfg.train.unroll_steps,
        "train.td_steps": cfg.train.td_steps,
        "train.value_prefix_horizon": cfg.train.value_prefix_horizon,
        "train.target_update_interval": cfg.train.target_update_interval,
        "train.reanalyse_batches": cfg.train.reanalyse_batches,
        "train.reanalyse_pass_chunk": cfg.train.reanalyse_pass_chunk,
        "replay.capacity": cfg.replay.capacity,
        "model.hidden": cfg.model.hidden,
        "model.latent_dim": cfg.model.latent_dim,
        "model.value_support": cfg.model.value_support,
        "model.reward_support": cfg.model.reward_support,
        "train.learning_rate": cfg.train.learning_rate,
    }
    for key, value in positive.items():
        if not value > 0:
            raise ConfigError(f"{key} must be > 0, got {value}")
    if cfg.run.devices < 0:
        raise ConfigError(f"run.devices must be >= 0 (0 = all devices), got {cfg.run.devices}")
    if cfg.run.eval_episodes < 0:
        raise ConfigError(f"run.eval_episodes must be >= 0, got {cfg.run.eval_episodes}")
    if not cfg.run.eval_temperature >= 0:
        raise ConfigError(
            f"run.eval_temperature must be >= 0 (0 = greedy), got {cfg.run.eval_temperature}")
    if not 0.0 < cfg.train.discount <= 1.0:
        raise ConfigError(f"train.discount must be in (0, 1], got {cfg.train.discount}")
    if not 0.0 <= cfg.train.reanalyse_fraction <= 1.0:
        raise ConfigError(
            f"train.reanalyse_fraction must be in [0, 1], got {cfg.train.reanalyse_fraction}"
        )
    if cfg.search.max_num_considered_actions < 0:
        raise ConfigError("search.max_num_considered_actions must be >= 0 (0 = by the action "
                          f"count), got {cfg.search.max_num_considered_actions}")
    if cfg.replay.beta_anneal_updates < 0:
        raise ConfigError("replay.beta_anneal_updates must be >= 0 (0 = constant beta), got "
                          f"{cfg.replay.beta_anneal_updates}")
    for key in ("mixed_value_age", "mixed_value_after"):
        if getattr(cfg.train, key) < 0:
            raise ConfigError(f"train.{key} must be >= 0, got {getattr(cfg.train, key)}")
    if cfg.train.reanalyse_pass_interval < 0:
        raise ConfigError("train.reanalyse_pass_interval must be >= 0 (0 = no pass), got "
                          f"{cfg.train.reanalyse_pass_interval}")
    if cfg.train.reanalyse_pass_rows < 0:
        raise ConfigError("train.reanalyse_pass_rows must be >= 0 (0 = every stored row), got "
                          f"{cfg.train.reanalyse_pass_rows}")
    if not cfg.search.q_floor > 0:
        raise ConfigError(f"search.q_floor must be > 0 (EfficientZero's is 0.01), got "
                          f"{cfg.search.q_floor}")
    if cfg.search.q_floor != SearchConfig.q_floor and cfg.search.q_normalisation != "tree":
        raise ConfigError("search.q_floor is the floor of the tree-wide Q range: set "
                          "search.q_normalisation=tree with it (node normalisation has no floor)")
    if cfg.train.train_ratio < 0:
        raise ConfigError(f"train.train_ratio must be >= 0, got {cfg.train.train_ratio}")
    if cfg.model.support_bins < 0 or cfg.model.support_bins == 1:
        raise ConfigError(f"model.support_bins must be 0 (integer atoms) or >= 2, got "
                          f"{cfg.model.support_bins}")
    if cfg.model.action_embedding < 0:
        raise ConfigError(f"model.action_embedding must be >= 0 (0 = one-hot action), got "
                          f"{cfg.model.action_embedding}")
    history = cfg.world_kwargs().get("history", 1)
    if cfg.model.memory == "gru" and not (isinstance(history, int) and history >= 2):
        raise ConfigError(f"model.memory=gru reads a history, and world_options.history={history}: "
                          "set world_options.history=k with k >= 2 (e.g. 8)")
    if cfg.train.memory_burn_in < 0:
        raise ConfigError(f"train.memory_burn_in must be >= 0, got {cfg.train.memory_burn_in}")
    if cfg.model.memory == "recurrent" and (cfg.train.augment_shift or cfg.train.augment_intensity):
        raise ConfigError("model.memory=recurrent does not take image augmentation: set "
                          "train.augment_shift=0 and train.augment_intensity=0")
    if not cfg.train.entropy_weight >= 0:
        raise ConfigError(f"train.entropy_weight must be >= 0 (0 = no entropy bonus), got "
                          f"{cfg.train.entropy_weight}")
    if cfg.train.augment_shift < 0:
        raise ConfigError(
            f"train.augment_shift must be >= 0 (0 = no shift), got {cfg.train.augment_shift}")
    if not cfg.train.augment_intensity >= 0:
        raise ConfigError("train.augment_intensity must be >= 0 (0 = no intensity change), got "
                          f"{cfg.train.augment_intensity}")
    _validate_continual(cfg)
    phase = updates_per_phase(cfg)
    if phase % cfg.train.reanalyse_batches:
        raise ConfigError(
            f"train.reanalyse_batches={cfg.train.reanalyse_batches} must divide the updates of one "
            f"learner phase, round(train_ratio x num_envs x collect_steps) = {phase}; set it to a "
            f"divisor of {phase} (1 always works) or change run.collect_steps"
        )
    if cfg.replay.capacity < cfg.train.unroll_steps + cfg.train.td_steps + 2:
        raise ConfigError(
            f"replay.capacity={cfg.replay.capacity} is shorter than one training window "
            f"(unroll_steps + td_steps + 2)"
        )


def _validate_continual(cfg: Config) -> None:
    """The continual fields: a sequence of named worlds, each with a budget the copies meet."""
    run = cfg.run
    sequence = run.world_sequence
    if run.dream_between < 0 or run.dream_between % updates_per_phase(cfg):
        chunk = updates_per_phase(cfg)
        raise ConfigError(f"run.dream_between={run.dream_between} must be a multiple of the "
                          f"updates of one learner phase, {chunk} (0 = no dream)")
    if not sequence:
        if run.real_steps_each:
            raise ConfigError(f"run.real_steps_each={run.real_steps_each} is the budget of each "
                              "world of a continual run: give run.worlds too (--worlds A,B)")
        return
    if not all(sequence):
        raise ConfigError(f"run.worlds={run.worlds!r}: an empty world name; list the worlds "
                          "separated by commas, e.g. minatar/breakout,minatar/freeway")
    if run.real_steps_each <= 0:
        raise ConfigError(f"run.worlds={run.worlds}: give each world's real budget, "
                          "--real-steps-each N (run.real_steps_each > 0)")
    if run.real_steps_each % run.num_envs:
        each, copies = run.real_steps_each, run.num_envs
        below, above = each // copies * copies, (each // copies + 1) * copies
        fix = f"{below} or {above}" if below else f"{above}"
        raise ConfigError(f"run.real_steps_each={each} is not a multiple of run.num_envs="
                          f"{copies} (the copies step together): use {fix}")
    if cfg.world != sequence[0] or run.real_steps != run.real_steps_each * len(sequence):
        raise ConfigError(
            f"a continual run's world is the first of run.worlds ({sequence[0]}) and its "
            f"run.real_steps is run.real_steps_each x {len(sequence)} = "
            f"{run.real_steps_each * len(sequence)}; got world={cfg.world}, "
            f"run.real_steps={run.real_steps}")
