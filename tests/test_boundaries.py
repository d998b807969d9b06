"""The architecture's lines, checked at run time as well as by ruff's banned imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

RUNTIME = ("langgraph", "langchain", "langchain_core", "agent_service")


def modules_loaded_by(statement: str) -> set[str]:
    probe = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    return {name.split(".")[0] for name in out.split()}


@pytest.mark.parametrize(
    "statement",
    ["import edge.app, edge.server", "from glassbox_cli import main; main.build_parser()"],
)
def test_the_edge_and_the_cli_load_no_agent_runtime(statement: str) -> None:
    assert not modules_loaded_by(statement) & set(RUNTIME)


def test_the_contract_package_needs_only_grpc_and_protobuf() -> None:
    loaded = modules_loaded_by("import glassbox.client, glassbox.errors")
    assert not loaded & {*RUNTIME, "starlette", "uvicorn", "edge"}
