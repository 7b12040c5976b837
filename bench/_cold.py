"""One cold start measured: every swarm process starts its verifiers at once.

Besides each verifier's time until ready, what the servers went through: the replica's
CPU, output bytes, connections accepted (reconnects show here) and peak memory (polled),
the primary's and sentinels' share, the connections each holds afterwards by last command,
each data node's role afterwards (a failover shows), and the follower processes' CPU (a
thousand verifiers on this host's 2 CPUs are busy parsing snapshots too).
"""

from __future__ import annotations

from typing import Any

from bench._redis_info import clients_by_command, delta
from bench._replica_scene import Peaks, Scene
from bench._stats import summary
from bench._swarm import Swarm
from revocast_tools.topologies import role


async def cold_start(scene: Scene, swarm: Swarm) -> dict[str, Any]:
    replica0, others0 = scene.replica(), scene.others()
    pids = [w.child.process.pid for w in swarm.workers]
    cpu0 = scene.process_cpu(pids)
    async with Peaks(scene.replica_port) as peaks:
        cold = await swarm.cold_start()
    replica1, others1 = scene.replica(), scene.others()
    cpu1 = scene.process_cpu(pids)
    status = await swarm.status()
    ready = [s for s in cold["ready_s"] if s is not None]
    servers = {"replica": scene.replica_port, "primary": scene.deployment.primaries[0].port}
    servers |= {f"sentinel{i}": s.port for i, s in enumerate(scene.deployment.sentinels)}
    accepted = "total_connections_received"
    roles = {
        ("primary" if node in scene.deployment.primaries else "replica"): role(node.port)
        for node in scene.deployment.data_nodes
    }
    return {
        "verifiers": swarm.verifiers,
        "wall_s": cold["wall_s"],
        "started_s": summary(cold["started_s"]),
        "ready_s": summary(ready) if ready else None,
        "ready": len(ready),
        "never_ready": len(cold["ready_s"]) - len(ready),
        "status_after": status,
        "replica": delta(replica0, replica1),
        "replica_connections_accepted": replica1.field(accepted) - replica0.field(accepted),
        "replica_peaks": peaks.peaks,
        "others": {name: delta(others0[name], others1[name]) for name in others0},
        "process_cpu_s": {k: round(cpu1[k] - cpu0[k], 3) for k in cpu0},
        # roles at the end, by the role each node had at the start: a failover shows here
        "roles_after": roles,
        "connections_by_last_command": {
            name: clients_by_command(port) for name, port in servers.items()
        },
    }
