"""The private Ray head's ports are distinct (training/local_ray.py).

A CI run once failed to start a head because two of Ray's components had been given the same port, 38835: ports
chosen by binding and closing one socket at a time repeat, here in about one head in two hundred."""

from __future__ import annotations

import socket

from grpo_trainer.training.local_ray import free_ports


def test_many_ports_at_once_are_all_different_and_free() -> None:
    # Five hundred one at a time repeated a port in every one of 20 tries on this machine.
    ports = free_ports(500)
    assert len(set(ports)) == len(ports) == 500
    for port in ports[:20]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # released again: the head can take it
