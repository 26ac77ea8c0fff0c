"""Networks of real asyncback nodes on this machine (processes or containers), for integration tests and scripts.

- `spec`: `NetworkSpec`, the description of a network (nodes by role, paras, host
  configuration); `default_network()`.
- `launcher`: `Cluster`, a trio async context manager that starts the network's processes
  under a run directory and stops them; node handles (`handle.NodeHandle`) with RPC, metrics,
  kill/pause/resume/restart; waits and assertions counted in relay blocks (`waits`).
- `provider`, `docker_provider`: what runs the nodes: processes here (native), or the containers
  of a compose project made from `compose` (docker), behind the same handles (`handle.NodeBase`).
- `faults`: the proxies of a cluster started with `faults=True`, through which every p2p link
  runs: partitions, latency, jitter and loss (`Cluster.partition`, `degrade`, `heal`).
- `blocking`: `SyncCluster`, the same for plain scripts.
- `ports`, `process`, `http`: free ports kept apart between launchers, spawning with a
  parent-death watch, the small HTTP client the handles use.
"""

from node.cluster.blocking import Blocking, SyncCluster
from node.cluster.handle import ClusterError, NodeBase, NodeFailed, NodeHandle, parse_metrics
from node.cluster.http import NodeUnreachable
from node.cluster.launcher import Cluster
from node.cluster.process import process_alive
from node.cluster.spec import NetworkSpec, NodeSpec, ParaSpec, default_network
from node.cluster.waits import NodeCrashed, RelayBlock, WaitTimeout

__all__ = ["Blocking", "Cluster", "ClusterError", "NetworkSpec", "NodeBase", "NodeCrashed",
           "NodeFailed", "NodeHandle", "NodeSpec", "NodeUnreachable", "ParaSpec", "RelayBlock",
           "SyncCluster", "WaitTimeout", "default_network", "parse_metrics", "process_alive"]
