"""Regenerate the Python code for proto/ into glassbox/agent/v1/.

python scripts/gen_proto.py          # write
python scripts/gen_proto.py --check  # exit 1 if the committed code drifted from proto/
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
PACKAGE_DIR = Path("glassbox/agent/v1")


def generate(out: Path) -> list[Path]:
    protos = sorted(p.relative_to(PROTO_ROOT) for p in (PROTO_ROOT / PACKAGE_DIR).glob("*.proto"))
    well_known = str(resources.files("grpc_tools") / "_proto")
    # mypy-protobuf's plugins are scripts next to the interpreter.
    bindir = Path(sys.executable).parent
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--plugin=protoc-gen-mypy={bindir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bindir / 'protoc-gen-mypy_grpc'}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *map(str, protos),
    ]
    subprocess.run(cmd, check=True)
    generated = sorted((out / PACKAGE_DIR).iterdir())
    return [p.relative_to(out / PACKAGE_DIR) for p in generated if p.is_file()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if generated code drifted")
    args = parser.parse_args()
    target = ROOT / PACKAGE_DIR
    with tempfile.TemporaryDirectory() as tmp:
        names = generate(Path(tmp))
        fresh = Path(tmp) / PACKAGE_DIR
        if args.check:
            stale = [
                n
                for n in names
                if not (target / n).exists()
                or not filecmp.cmp(fresh / n, target / n, shallow=False)
            ]
            committed = {p.relative_to(target) for p in target.glob("*_pb2*")}
            extra = sorted(committed - set(names))
            if stale or extra:
                print(
                    "generated code is out of date; run: python scripts/gen_proto.py",
                    file=sys.stderr,
                )
                for n in [*stale, *extra]:
                    print(f"  {PACKAGE_DIR / n}", file=sys.stderr)
                return 1
            print(f"generated code matches proto/ ({len(names)} files)")
            return 0
        for stale_file in target.glob("*_pb2*"):
            stale_file.unlink()
        target.mkdir(parents=True, exist_ok=True)
        for n in names:
            shutil.copyfile(fresh / n, target / n)
        for pkg in (ROOT / "glassbox/agent", target):
            (pkg / "__init__.py").touch()
    print(f"wrote {len(names)} files to {PACKAGE_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
