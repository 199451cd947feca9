"""Scale-out of the game loop: rollouts and judge calls cut into seeded shards, run in this process or on Ray actors.

* ``config`` — the ``rollout`` section of the training config;
* ``shards`` — the sharded view of the policies and the judge that recipes play with (same seeds everywhere);
* ``local`` — the single-process executor (the default);
* ``weights`` — versioned snapshots of the trained weights that rollout workers pull after each update;
* ``workers`` — how a worker builds its own copy of the policies and the judge;
* ``actors`` / ``ray_backend`` — the Ray rollout and judge actors and the driver-side executor (``safeplay[ray]``);
* ``launch`` — picks the executor of a run from ``--distributed`` and the config.
"""
