"""After a failed group, the restart counts the nodes alive now: a refusing raylet is waited out."""
from __future__ import annotations

import socket

from app.train import node_view
from app.train.node_view import FreshNodeView, refuses


def _state(name: str):
    """A stand-in for Ray Train's controller state of that class name."""
    return type(name, (), {"is_terminal": lambda self: False})()


def test_a_closed_port_refuses_and_a_listening_one_does_not():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert not refuses("127.0.0.1", port)
    assert refuses("127.0.0.1", port)  # closed now: nothing listens


def test_no_answer_is_not_a_refusal(monkeypatch):
    def silent(address, timeout):
        raise TimeoutError("timed out")  # a machine that vanished: no RST comes back

    monkeypatch.setattr(node_view.socket, "create_connection", silent)
    assert not refuses("10.0.0.12", 6380)


def test_a_failed_group_waits_for_the_refusing_node_then_rereads_the_nodes(monkeypatch):
    alive = [frozenset({"head", "worker"})]
    calls = []
    monkeypatch.setattr(node_view, "alive_nodes", lambda: alive[0])
    monkeypatch.setattr(node_view, "gone_raylets", lambda: {"worker"} & alive[0])

    def declared_dead(nodes):
        calls.append(("wait", set(nodes)))
        alive[0] = alive[0] - nodes  # the GCS catches up
        return 1.0

    monkeypatch.setattr(node_view, "await_declared_dead", declared_dead)
    monkeypatch.setattr(node_view, "recompute_reservations", lambda: calls.append(("recompute",)))
    view = FreshNodeView()
    view.after_controller_state_update(_state("SchedulingState"), _state("RunningState"))
    assert view.seen == {"head", "worker"} and calls == []
    view.after_controller_state_update(_state("RunningState"), _state("RestartingState"))
    assert calls == [("wait", {"worker"}), ("recompute",)] and view.seen == {"head"}
    view.after_controller_state_update(_state("RestartingState"), _state("SchedulingState"))
    assert len(calls) == 2  # nothing changed since: no second re-read


def test_a_crashed_worker_on_a_healthy_cluster_restarts_without_waiting(monkeypatch):
    calls = []
    monkeypatch.setattr(node_view, "alive_nodes", lambda: frozenset({"head", "worker"}))
    monkeypatch.setattr(node_view, "gone_raylets", lambda: set())
    monkeypatch.setattr(node_view, "await_declared_dead", lambda nodes: calls.append("wait"))
    monkeypatch.setattr(node_view, "recompute_reservations", lambda: calls.append("recompute"))
    view = FreshNodeView()
    view.after_controller_state_update(_state("SchedulingState"), _state("RunningState"))
    view.after_controller_state_update(_state("RunningState"), _state("RestartingState"))
    assert calls == []
