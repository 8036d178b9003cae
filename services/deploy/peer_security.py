"""The security a group's peer (feed, gateway, strategy host) applies to one of its connections.

One rule for every process: ipc endpoints run plain (the file system is the boundary); tcp
endpoints use CURVE with the peer's own key pair (``<keys_dir>/<peer>.key_secret``) and the
sequencer's public key, or plaintext only where the profile explicitly allows it.
"""

from __future__ import annotations

from bus.endpoints import is_tcp
from bus.security import CurveClient, SocketSecurity, public_key_path, secret_key_path, security_for
from services.deploy.profile import Profile

__all__ = ["client_security"]


def client_security(profile: Profile, peer: str, endpoint: str) -> SocketSecurity | None:
    """None for a non-tcp endpoint; else CURVE for `peer` (or the allowed plaintext).

    Raises:
        SecurityError: a tcp endpoint without keys and without `allow_plaintext_tcp`, or a key
            file that is unreadable or readable by others.
    """
    if not is_tcp(endpoint):
        return None
    section = profile.security
    curve = None
    if section.keys_dir is not None and section.server_key is not None:
        curve = CurveClient.from_files(
            secret_key_path(section.keys_dir, peer), public_key_path(section.keys_dir, section.server_key)
        )
    return security_for(endpoint, curve, allow_plaintext_tcp=section.allow_plaintext_tcp)
