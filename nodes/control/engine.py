"""Faults on a cluster Bazar attached to but did not start, applied by the container engine that
runs it (docs/containers.md): a crash is ``docker kill``, a hang ``docker pause``, a cut-off a
real one (the container taken off its network), a start or restart the engine's. Only what
needs the process goes here; slowing a node, its links and its disk go through its admin
routes, as for every node.

The engine is reached by its command line (``docker``), so Bazar needs no client library, and
a container is found by the labels Compose gives it (project and service), so the Compose file
itself need not be at hand."""
from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.request

from nodes.control.errors import ClusterError
from nodes.control.processes import ManagedNode
from nodes.core.vocabulary import NodeState

#: How long a started container may take to answer its health route.
START_TIMEOUT_S = 60.0


class ComposeEngine:
    """The containers of one Compose project: one per node, named by service (``frontend``,
    ``catalog0``, ``order1``, ...), as compose.yaml names them."""

    def __init__(self, project: str, *, docker: str = "docker") -> None:
        self.project = project
        self.docker = docker
        self._ids: dict[str, str] = {}
        self._network: str | None = None

    def run(self, *args: str, timeout: float = 60.0) -> str:
        """One engine command; its output, or a ClusterError in plain words."""
        if shutil.which(self.docker) is None:
            raise ClusterError(f"no `{self.docker}` command here: the cluster's faults go through its container "
                               "engine (docs/containers.md)")
        try:
            done = subprocess.run([self.docker, *args], capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise ClusterError(f"`{self.docker} {' '.join(args)}` did not answer within {timeout:.0f} s") from None
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines() or ["no reason given"]
            raise ClusterError(f"`{self.docker} {' '.join(args[:2])}` failed: {said[-1]}")
        return done.stdout.strip()

    def container(self, service: str) -> str:
        """The id of ``service``'s container (kept: a killed, paused or cut-off one keeps it)."""
        if service not in self._ids:
            found = self.run("ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}",
                             "--filter", f"label=com.docker.compose.service={service}").split()
            if not found:
                raise ClusterError(f"the Compose project '{self.project}' has no container for {service}; start it "
                                   "with `docker compose up -d` (docs/containers.md), or name the project as "
                                   "attach.project in the cluster file")
            self._ids[service] = found[0]
        return self._ids[service]

    def network(self) -> str:
        """The cluster's network as the engine names it, read once from a container on it."""
        if self._network is None:
            for service in ("frontend", *sorted(self._ids)):
                networks = json.loads(self.run("inspect", "-f", "{{json .NetworkSettings.Networks}}",
                                               self.container(service)) or "{}")
                if networks:
                    self._network = next(iter(networks))
                    break
            else:
                raise ClusterError(f"no container of the Compose project '{self.project}' is on a network")
        return self._network

    def check(self, services: list[str]) -> None:
        """Every node has its container, and the network is known before anything is cut."""
        for service in services:
            self.container(service)
        self.network()

    def logs(self, service: str, lines: int) -> str:
        """The last ``lines`` of the node's output, as the engine kept it (or why it cannot be read)."""
        try:
            done = subprocess.run([self.docker, "logs", "--tail", str(lines), self.container(service)],
                                  capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        except (ClusterError, OSError, subprocess.TimeoutExpired) as error:
            return f"the engine could not give {service}'s output: {error}"
        return (done.stdout + done.stderr).strip()

    # ---- the faults, each with its heal ------------------------------------------------------
    def kill(self, service: str) -> None:
        self.run("kill", self.container(service))

    def stop(self, service: str) -> None:
        """SIGTERM, as ``docker compose stop`` does; a node stops within a second."""
        self.run("stop", "-t", "5", self.container(service))

    def start(self, service: str, address: str) -> None:
        """Start the container and wait until the node answers its health route."""
        self.run("start", self.container(service))
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(address):
            if time.monotonic() > deadline:
                raise ClusterError(f"{service} was started but did not answer within {START_TIMEOUT_S:.0f} s; "
                                   f"see `docker logs {self.container(service)}`")
            time.sleep(0.2)  # polling a process in another container: no event to wait on

    def pause(self, service: str) -> None:
        self.run("pause", self.container(service))

    def unpause(self, service: str) -> None:
        self.run("unpause", self.container(service))

    def cut(self, service: str, on: bool) -> None:
        """Take the container off the cluster's network (a real partition), or put it back under
        its service's name: without ``--alias`` no peer would find it again."""
        network = self.network()
        if on:
            self.run("network", "disconnect", network, self.container(service))
        else:
            self.run("network", "connect", "--alias", service, network, self.container(service))


def _answers(address: str) -> bool:
    """The node's health route answers at all (503 "degraded" counts: the process serves)."""
    try:
        with urllib.request.urlopen(f"{address}/health", timeout=1):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def by_engine(engine: ComposeEngine, node: ManagedNode, action: str) -> None:
    """``action`` (crash, stop, start, hang, resume) on an attached node's container, and the
    node's state as the supervisor keeps it for every node."""
    service = node.name
    if action == "crash":
        engine.kill(service)
        node.state = NodeState.DOWN
    elif action == "stop":
        engine.stop(service)
        node.state = NodeState.DOWN
    elif action == "start":
        if node.state in (NodeState.UP, NodeState.HUNG, NodeState.STARTING):
            return
        engine.start(service, node.address)
        node.state, node.cut_off, node.started_at = NodeState.UP, False, time.time()
        node.ready.set()
    elif action == "hang":
        if node.state != NodeState.UP:
            raise ClusterError(f"{service} is {node.status}; only a node that is up can hang")
        engine.pause(service)
        node.state = NodeState.HUNG
    elif action == "resume":
        if node.state == NodeState.HUNG:
            engine.unpause(service)
            node.state = NodeState.UP
    else:
        raise ClusterError(f"cannot {action} {service} through the container engine")
