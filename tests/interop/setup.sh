#!/usr/bin/env bash
# Installs the third-party clients used by tests/interop.rs. Idempotent and
# fast when already done; run by scripts/test (run it by hand only to debug).
#
#   target/interop/venv       Python venv: grpcio, grpcio-tools, grpcio-reflection, h2 (requirements.txt)
#   target/interop/gen        Python stubs from proto/ (echo, grpc.health.v1, grpc.testing)
#   tests/interop/node/node_modules   @grpc/grpc-js + @grpc/proto-loader (package-lock.json)
#
# Needs python3 with the venv module, node and npm, and the PyPI and npm registries.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/tests/interop"
out="$root/target/interop"
venv="$out/venv"
gen="$out/gen"
mkdir -p "$out"

# 1. Python venv, re-installed only when requirements.txt changes.
stamp="$venv/.requirements.txt"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$stamp"; then
  echo "interop: creating Python venv in target/interop/venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$stamp"
fi

# 2. Python stubs, regenerated when a .proto is newer than them.
testing="src/proto/grpc/testing"
if [ ! -f "$gen/echo_pb2_grpc.py" ] || [ ! -f "$gen/health_pb2_grpc.py" ] \
   || [ ! -f "$gen/$testing/test_pb2_grpc.py" ] \
   || [ -n "$(find "$root/proto" -name '*.proto' -newer "$gen/echo_pb2_grpc.py")" ]; then
  echo "interop: generating Python stubs in target/interop/gen"
  rm -rf "$gen"
  mkdir -p "$gen"
  "$venv/bin/python" -m grpc_tools.protoc -I "$root/proto" \
    --python_out="$gen" --grpc_python_out="$gen" "$root/proto/echo.proto"
  # Top-level health_pb2: a generated grpc/ package would shadow grpcio's.
  "$venv/bin/python" -m grpc_tools.protoc -I "$root/proto/grpc/health/v1" \
    --python_out="$gen" --grpc_python_out="$gen" "$root/proto/grpc/health/v1/health.proto"
  # grpc's interop schemas, at grpc's own package path (src.proto.grpc.testing).
  "$venv/bin/python" -m grpc_tools.protoc -I "$root/proto" \
    --python_out="$gen" --grpc_python_out="$gen" \
    "$root/proto/$testing/empty.proto" "$root/proto/$testing/messages.proto" \
    "$root/proto/$testing/test.proto"
fi

# 3. Node client dependencies, exactly as locked.
node_dir="$here/node"
if [ ! -f "$node_dir/node_modules/.package-lock.json" ] \
   || [ "$node_dir/package-lock.json" -nt "$node_dir/node_modules/.package-lock.json" ]; then
  echo "interop: npm ci in tests/interop/node"
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "interop: clients ready (python $("$venv/bin/python" -c 'import grpc; print("grpcio", grpc.__version__)'), node $(node --version))"
