#!/bin/sh
# Builds bundle_client against libLiteRt.so and copies the library beside it (the binary finds it through
# rpath $ORIGIN, so the folder runs as is, without Python).
#
#   examples/c/build.sh [OUT_DIR]        default OUT_DIR: examples/c/build
#
# libLiteRt.so comes from LITERT_LIB_DIR, or else from the ai-edge-litert package that $PYTHON (default python3)
# imports. bundle_client.c declares the LiteRT C API of ai-edge-litert 2.3.0 itself (the wheel has no headers):
# another version may change the ABI, so this warns when the package is not 2.3.0.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/build}
lib=${LITERT_LIB_DIR:-}
if [ -z "$lib" ]; then
    py=${PYTHON:-python3}
    lib=$("$py" -c 'import importlib.util as u, os; print(os.path.dirname(u.find_spec("ai_edge_litert").origin))' \
        2>/dev/null || true)
    version=$("$py" -c 'import importlib.metadata as m; print(m.version("ai-edge-litert"))' 2>/dev/null || true)
fi
if [ -z "$lib" ] || [ ! -f "$lib/libLiteRt.so" ]; then
    echo "build.sh: no libLiteRt.so found (install ai-edge-litert or set LITERT_LIB_DIR)" >&2
    exit 2
fi
if [ -n "${version:-}" ] && [ "$version" != "2.3.0" ]; then
    echo "build.sh: warning: ai-edge-litert is $version; bundle_client.c declares the 2.3.0 C API" >&2
fi
mkdir -p "$out"
cp "$lib/libLiteRt.so" "$out/libLiteRt.so"
${CC:-gcc} -O2 -std=c11 -Wall -Wextra -Werror "$here/bundle_client.c" -o "$out/bundle_client" \
    -L"$out" -lLiteRt -Wl,-rpath,'$ORIGIN'
echo "$out/bundle_client"
