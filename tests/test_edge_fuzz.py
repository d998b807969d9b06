"""Schemathesis over every operation of /openapi.json, against the real agent and edge.

It sends what the document allows and what it forbids (bounds, NUL bytes, wrong types,
unknown methods) and checks every answer: never a 5xx, always a status and a body the
document promises (the catalogue's error shape included), 405s that name the path's
methods in `Allow`, invalid input refused and valid input accepted, and a request
without credentials refused.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from edge import openapi
from tests.edge_harness import StackFactory

API_KEY = "fuzz-key"
EXAMPLES_PER_OPERATION = 25


@pytest.fixture(params=["sqlite", "postgres"])
def fuzz_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":  # NUL bytes reached PostgreSQL's text columns
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path}/fuzz.db"


@pytest.mark.timeout(180)
async def test_schemathesis_finds_no_error_outside_the_document(
    start_stack: StackFactory, fuzz_database: str, tmp_path: Path
) -> None:
    async with start_stack(
        fuzz_database,
        no_auth=False,
        api_keys={API_KEY: "fuzzer"},
        rate_ops_per_s=1e6,  # the fuzzer is one principal sending thousands of requests
        rate_burst=1_000_000,
    ) as stack:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"{stack.url}/openapi.json",
            "--header",
            f"Authorization: Bearer {API_KEY}",
            "--checks",
            "all",
            "--max-examples",
            str(EXAMPLES_PER_OPERATION),
            "--seed",
            "1",
            "--continue-on-failure",
            "--generation-database",
            "none",
            "--request-timeout",
            "20",
            "--no-color",
            cwd=str(tmp_path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
    report = output.decode(errors="replace")
    assert process.returncode == 0, report[-20_000:]
    operations = sum(len(ops) for ops in openapi.document()["paths"].values())
    assert f"Tested: {operations}" in report, report[-5_000:]  # every operation, none skipped
