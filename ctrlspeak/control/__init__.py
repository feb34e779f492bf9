"""The control socket: how ``ctrlspeak toggle|start|stop|...`` and status bars talk to the daemon.

JSON lines over a Unix-domain socket that only its owner may use::

    protocol.py   the line protocol: requests, replies, limits, error codes
    runtime.py    the runtime dir and its permissions, the socket file, peer credentials
    client.py     request() and follow(), what the CLI verbs call
    server.py     ControlServer, which ``ctrlspeak run`` owns: accepts, admits, publishes,
                  and serves each client on its own thread within every bound

Torch-free, like the rest of the daemon side.
"""
from __future__ import annotations

from ctrlspeak.control.client import follow, request
from ctrlspeak.control.protocol import COMMANDS, ArgSpec, BadRequest, parse_request
from ctrlspeak.control.runtime import (ENV_RUNTIME_DIR, SOCKET_NAME, PeerCredentials, default_runtime_dir,
                                       ensure_private_dir, peer_credentials, socket_path)
from ctrlspeak.control.server import ClientInfo, ControlServer, Handler

__all__ = ["COMMANDS", "ENV_RUNTIME_DIR", "SOCKET_NAME", "ArgSpec", "BadRequest", "ClientInfo", "ControlServer",
           "Handler", "PeerCredentials", "default_runtime_dir", "ensure_private_dir", "follow", "parse_request",
           "peer_credentials", "request", "socket_path"]
