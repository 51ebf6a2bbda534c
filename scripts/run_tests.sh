#!/usr/bin/env bash
# Installs everything the tests need, then runs every test: ctest (the C++ core, GoogleTest) and
# pytest (the Python package, as installed). Run from anywhere: `bash scripts/run_tests.sh`.
# XENTCPP_TEST_TORCH=0 skips installing PyTorch (its parity tests are then skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}

# GoogleTest: Debian's libgtest-dev, found by CMake's find_package(GTest).
if ! dpkg-query -W -f='${Status}' libgtest-dev 2>/dev/null | grep -q "ok installed"; then
  sudo=$([ "$(id -u)" = 0 ] || echo sudo)
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq libgtest-dev
fi

"$python" -m pip install -q ".[test,examples,dev]"
# PyTorch is the parity peer; torch==2.13.0 is a local CPU build on the project's machines.
if [ "${XENTCPP_TEST_TORCH:-1}" != 0 ] && ! "$python" -c "import torch" 2>/dev/null; then
  "$python" -m pip install -q torch==2.13.0
fi

# Lint and types: ruff on every Python file, mypy --strict on the package and tests/typing (the
# overloads users' annotations rely on). xentcpp/torch.py is type-checked when PyTorch is installed.
# Without PyTorch, xentcpp/torch.py (which then raises ImportError by design) is left out of both.
mypy_skip=() pytest_skip=()
if ! "$python" -c "import torch" 2>/dev/null; then
  mypy_skip=(--exclude 'xentcpp/torch\.py$')
  pytest_skip=(--ignore="$("$python" -c "import os, xentcpp; print(os.path.join(os.path.dirname(xentcpp.__file__), 'torch.py'))")")
fi
"$python" -m ruff check python tests examples benchmarks
"$python" -m mypy "${mypy_skip[@]}"

# The wheel as users get it (pip wheel, in a scratch directory outside the tree), and on Linux
# auditwheel's account of it: the libraries it needs and the manylinux tag they allow (which must
# exist: a symbol or library outside every manylinux policy fails here; repair is cibuildwheel's job).
wheel_dir=$(mktemp -d)
trap 'rm -rf "$wheel_dir"' EXIT
"$python" -m pip wheel . --no-deps -q -w "$wheel_dir"
if [ "$(uname -s)" = Linux ]; then
  "$python" -m auditwheel show "$wheel_dir"/xentcpp-*.whl | tee "$wheel_dir/show.txt"
  tr -s '\n' ' ' < "$wheel_dir/show.txt" | grep -Eq 'platform tag (to|:) "?manylinux_[0-9]+_[0-9]+_'
fi

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B build/tests "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON
cmake --build build/tests --parallel

# The benchmark script still runs (a smoke run: it measures and reports, it asserts no timing).
"$python" benchmarks/bench.py --quick --out build/bench-quick > build/bench-quick.log
echo "benchmark smoke run: ok (build/bench-quick.log)"

# Every SIMD target this machine runs, each forced through XENTCPP_SIMD: ctest and pytest per target
# (from outside the source tree, so that the installed package is the one imported).
targets=$("$python" -c "from xentcpp import _core
print(' '.join(t for t in ('avx512', 'avx2', 'baseline') if _core.simd_target_supported(t)))")
cd build
for target in $targets; do
  echo "=== SIMD target: $target"
  XENTCPP_SIMD=$target ctest --test-dir tests --output-on-failure
  XENTCPP_SIMD=$target "$python" -m pytest ../tests --pyargs xentcpp --doctest-modules -c ../pyproject.toml \
    --rootdir .. -p no:cacheprovider -q "${pytest_skip[@]}"
done

