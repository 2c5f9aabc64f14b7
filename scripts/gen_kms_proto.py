"""Generates the KMS v2 gRPC stubs in src/envelope/plugin/_proto from the vendored proto.

    python scripts/gen_kms_proto.py          # (re)write the stubs
    python scripts/gen_kms_proto.py --check  # CI: fail if regenerating changes them

Needs grpcio-tools (the ``dev`` extra). The stubs are checked in, so installing envelope
never runs protoc.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PROTO = Path("envelope/plugin/_proto/api.proto")
OUTPUTS = ("api_pb2.py", "api_pb2.pyi", "api_pb2_grpc.py")


def generate(out: Path) -> None:
    """Runs protoc on the vendored proto, writing the three stub files under ``out``."""
    args = [
        "protoc",
        f"-I{SRC}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        str(SRC / PROTO),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    check = parser.parse_args().check
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        fresh = Path(tmp) / PROTO.parent
        stale = [
            name
            for name in OUTPUTS
            if not (SRC / PROTO.parent / name).exists()
            or not filecmp.cmp(fresh / name, SRC / PROTO.parent / name, shallow=False)
        ]
        if check:
            if stale:
                print(f"stale generated stubs: {', '.join(stale)}; run {sys.argv[0]}")
                return 1
            print("generated stubs are up to date")
            return 0
        for name in OUTPUTS:
            shutil.copyfile(fresh / name, SRC / PROTO.parent / name)
    print(f"wrote {', '.join(OUTPUTS)} in {SRC / PROTO.parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
