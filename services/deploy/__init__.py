"""Deploying a process group: profiles and the supervisord configuration they imply.

    profile          Profile (pydantic, strict), load_profile, ProfileError
    supervisor_conf  render_supervisor_conf: one [program] per process of the group
    paths            unix socket paths short enough to bind

`tradebus up` / `tradebus down` (services/cli/up_cmd.py) use these; docs/operations.md is the
operator's guide.
"""

from __future__ import annotations

from services.deploy.profile import Profile, ProfileError, load_profile, read_run_dir
from services.deploy.supervisor_conf import (
    Program,
    SupervisorFiles,
    programs,
    render_supervisor_conf,
    supervisor_files,
)

__all__ = [
    "Profile",
    "ProfileError",
    "Program",
    "SupervisorFiles",
    "load_profile",
    "programs",
    "read_run_dir",
    "render_supervisor_conf",
    "supervisor_files",
]
