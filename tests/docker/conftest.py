"""The image every docker test runs, built once per session by `scripts/build-image`."""

from __future__ import annotations

import pytest
from docker_env import IMAGE, build_image, require_docker


@pytest.fixture(scope="session")
def image() -> str:
    require_docker()
    seconds = build_image()
    print(f"\nimage {IMAGE} built in {seconds:.0f} s")
    return IMAGE
