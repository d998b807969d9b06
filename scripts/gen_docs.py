"""Write docs/ws-protocol.schema.json and docs/openapi.json from the edge's own schemas.

`--check` fails (exit 1) when the committed files differ from what the code says, so the
published protocol cannot drift from what the edge validates.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edge.frames import protocol_schema
from edge.openapi import document

ROOT = Path(__file__).resolve().parent.parent
OUTPUTS = {
    ROOT / "docs" / "ws-protocol.schema.json": protocol_schema,
    ROOT / "docs" / "openapi.json": document,
}


def main(check: bool) -> int:
    stale = []
    for path, build in OUTPUTS.items():
        text = json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(path.relative_to(ROOT))
        else:
            path.write_text(text)
    if stale:
        names = ", ".join(map(str, stale))
        print(f"{names} out of date: run .venv/bin/python scripts/gen_docs.py", file=sys.stderr)
        return 1
    print(f"docs match the edge's schemas ({len(OUTPUTS)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main("--check" in sys.argv[1:]))
