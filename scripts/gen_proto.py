"""Generate the contract package's code (`protos/authsvc_proto/v1/`) from its .proto files, or check it.

`--out DIR` writes the generated modules below DIR (`make proto` passes `protos`, the package's root);
`--check` generates into a temporary folder and fails, listing the files, when the committed ones differ.
"""

from __future__ import annotations

import argparse
import filecmp
import importlib.resources
import sys
import tempfile
from pathlib import Path

from google.api import annotations_pb2
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PACKAGE = Path("authsvc_proto/v1")
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def _include_paths() -> list[str]:
    grpc_tools_protos = importlib.resources.files("grpc_tools") / "_proto"
    # googleapis-common-protos ships google/api/*.proto beside its generated modules.
    googleapis_root = Path(annotations_pb2.__file__).resolve().parent.parent.parent
    return [str(PROTO_ROOT), str(grpc_tools_protos), str(googleapis_root)]


def generate(out: Path) -> None:
    """Run protoc with the python, grpc and mypy stub generators; raise on failure."""
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / PACKAGE).glob("*.proto"))
    (out / PACKAGE).mkdir(parents=True, exist_ok=True)
    args = ["grpc_tools.protoc", *(f"-I{path}" for path in _include_paths())]
    bindir = Path(sys.executable).parent
    args += [f"--plugin=protoc-gen-{name}={bindir / f'protoc-gen-{name}'}" for name in ("mypy", "mypy_grpc")]
    args += [f"--python_out={out}", f"--grpc_python_out={out}", f"--mypy_out={out}", f"--mypy_grpc_out={out}"]
    if protoc.main([*args, *protos]) != 0:
        raise SystemExit("protoc failed")
    init = out / PACKAGE / "__init__.py"
    init.write_text('"""Generated from the .proto files beside it by `make proto`: never edit by hand."""\n')


def _generated_files(root: Path) -> set[str]:
    names: set[str] = set()
    folder = root / PACKAGE
    if folder.exists():
        names |= {str(PACKAGE / p.name) for p in folder.iterdir() if p.name.endswith(GENERATED_SUFFIXES)}
    names.add(str(PACKAGE / "__init__.py"))
    return names


def check() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        generate(fresh)
        names = _generated_files(fresh) | _generated_files(PROTO_ROOT)
        stale = sorted(
            name
            for name in names
            if not (PROTO_ROOT / name).exists()
            or not (fresh / name).exists()
            or not filecmp.cmp(PROTO_ROOT / name, fresh / name, shallow=False)
        )
    if stale:
        print(f"generated code is stale, run `make proto`: {', '.join(stale)}", file=sys.stderr)
        return 1
    print("generated code is up to date")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--out", type=Path)
    group.add_argument("--check", action="store_true")
    args = parser.parse_args()
    if args.check:
        return check()
    generate(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
