#!/usr/bin/env bash
# Installs everything the tests need, then runs every test: ctest (the C++ core, GoogleTest), pytest
# (the Python package as installed, its docstrings' examples and those of README.md and docs/), the docs
# build, lint and types. Run from anywhere: `bash scripts/run_tests.sh`.
# Every Python package comes from constraints.txt's exact versions (CONTRIBUTING.md, "Pinned tools").
# XENTCPP_TEST_TORCH=0 skips installing PyTorch (its parity tests and docs examples are then skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}

# Debian packages, installed when missing: GoogleTest (found by CMake's find_package(GTest)),
# valgrind (the leak check of the extension), clang with its runtime (libFuzzer, for the fuzz target).
apt_packages=()
for package in libgtest-dev valgrind clang libclang-rt-dev; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || apt_packages+=("$package")
done
if [ ${#apt_packages[@]} -gt 0 ]; then
  sudo=$([ "$(id -u)" = 0 ] || echo sudo)
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${apt_packages[@]}"
fi

# Every install passes the constraints: the same versions on every machine, whatever upstream releases.
pip_install=("$python" -m pip install -q -c constraints.txt)
# The build requirements pinned too (an isolated build would fetch the newest), then xentcpp built with them.
"${pip_install[@]}" scikit-build-core pybind11 scipy-openblas32 cmake ninja
"${pip_install[@]}" --no-build-isolation ".[test,examples,dev,docs,dask]"
# PyTorch is the parity peer, at the version of the parity tests (its CPU build where pip offers one).
if [ "${XENTCPP_TEST_TORCH:-1}" != 0 ] && ! "$python" -c "import torch" 2>/dev/null; then
  "${pip_install[@]}" torch==2.13.0
fi

# Lint and types: ruff on every Python file of the tree, mypy --strict on the package and tests/typing (the
# overloads users' annotations rely on). xentcpp/torch.py is type-checked when PyTorch is installed.
# Without PyTorch, xentcpp/torch.py (which then raises ImportError by design) is left out of both.
mypy_skip=() pytest_skip=()
if ! "$python" -c "import torch" 2>/dev/null; then
  mypy_skip=(--exclude 'xentcpp/torch\.py$')
  pytest_skip=(--ignore="$("$python" -c "import os, xentcpp; print(os.path.join(os.path.dirname(xentcpp.__file__), 'torch.py'))")")
fi
"$python" -m ruff check .
"$python" -m mypy "${mypy_skip[@]}"

# The documentation, warnings as errors: its pages, and the API reference generated from the installed
# package's docstrings, whose form numpydoc checks (docs/conf.py). The pages' examples run with pytest below.
"$python" -m sphinx -W --keep-going -q -b html docs build/docs/html
echo "docs build: ok (build/docs/html)"

# The wheel as users get it (pip wheel, in a scratch directory outside the tree), and on Linux
# auditwheel's account of it: the libraries it needs and the manylinux tag they allow (which must
# exist: a symbol or library outside every manylinux policy fails here; repair is cibuildwheel's job).
# The BLAS (libscipy_openblas.so) is not in the wheel: it comes from the scipy-openblas32 dependency
# at run time (and cibuildwheel's repair excludes it), so auditwheel is shown where it is, to count
# its symbols and those of the libraries it needs too.
wheel_dir=$(mktemp -d)
trap 'rm -rf "$wheel_dir"' EXIT
# Its isolated build environment gets the pinned build requirements through PIP_CONSTRAINT (pip does not
# hand -c on to it).
PIP_CONSTRAINT="$PWD/constraints.txt" "$python" -m pip wheel . --no-deps -q -w "$wheel_dir"
if [ "$(uname -s)" = Linux ]; then
  blas_dir=$("$python" -c "import scipy_openblas32; print(scipy_openblas32.get_lib_dir())")
  LD_LIBRARY_PATH="$blas_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$python" -m auditwheel show "$wheel_dir"/xentcpp-*.whl | tee "$wheel_dir/show.txt"
  tr -s '\n' ' ' < "$wheel_dir/show.txt" | grep -Eq 'platform tag (to|:) "?manylinux_[0-9]+_[0-9]+_'
fi

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B build/tests "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=ON
cmake --build build/tests --parallel

# The C++ API page's example, compiled against the core just built, must print what the page shows.
"${CXX:-c++}" -std=c++17 -O2 -fopenmp -Icsrc/include docs/examples/loss.cpp build/tests/csrc/libxentcpp_core.a \
  -o build/tests/docs_example
build/tests/docs_example | diff -u docs/examples/loss.out -
echo "C++ docs example: ok"

# The benchmark script still runs (a smoke run: it measures and reports, it asserts no timing).
"$python" benchmarks/bench.py --quick --out build/bench-quick > build/bench-quick.log
echo "benchmark smoke run: ok (build/bench-quick.log)"

# Sanitizers: the C++ suite built with ASan + UBSan (CMakePresets.json "sanitize"), any report fatal,
# run under the baseline and the active SIMD target (test_sanitizer_canary checks that a read past
# a buffer inside the kernels is reported). Then the fuzz target, for a bounded time.
cmake --preset sanitize "${generator[@]}"
cmake --build build/sanitize --parallel
active=$("$python" -c "from xentcpp import _core; print(_core.simd_target())")
for target in $(printf '%s\n' baseline "$active" | sort -u); do
  echo "=== sanitizers, SIMD target: $target"
  XENTCPP_SIMD=$target ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build/sanitize --output-on-failure
done
cmake --preset fuzz "${generator[@]}"
cmake --build build/fuzz --parallel
mkdir -p build/fuzz/corpus  # new inputs go here; the seeds in tests/fuzz/corpus are only read
build/fuzz/tests/fuzz/fuzz_core -max_total_time="${XENTCPP_FUZZ_SECONDS:-45}" -print_final_stats=1 \
  -artifact_prefix=build/fuzz/ build/fuzz/corpus tests/fuzz/corpus
echo "fuzzing: ok"

# Leaks: a loop of calls through the installed extension, raised errors included, under valgrind
# memcheck (suppressions: CPython's and NumPy's one-time allocations). Any leak or memory error fails.
real_python=$("$python" -c "import sys; print(sys.executable)")  # not a shim script: valgrind follows no exec
(cd build && PYTHONMALLOC=malloc timeout 900 valgrind --tool=memcheck --undef-value-errors=no \
  --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite --error-exitcode=99 \
  --num-callers=40 --suppressions=../tests/leaks/python.supp "$real_python" ../tests/leaks/leak_loop.py 40)
echo "leak check: ok"

# Every SIMD target this machine runs, each forced through XENTCPP_SIMD: ctest and pytest per target
# (from outside the source tree, so that the installed package is the one imported), with the examples
# of the docstrings, README.md and docs/.
targets=$("$python" -c "from xentcpp import _core
print(' '.join(t for t in ('avx512', 'avx2', 'baseline') if _core.simd_target_supported(t)))")
cd build
for target in $targets; do
  echo "=== SIMD target: $target"
  XENTCPP_SIMD=$target ctest --test-dir tests --output-on-failure
  XENTCPP_SIMD=$target "$python" -m pytest ../tests ../docs ../README.md --pyargs xentcpp --doctest-modules \
    -c ../pyproject.toml --rootdir .. -p no:cacheprovider -q -m "not slow" "${pytest_skip[@]}"
done

# The slow tests, once, on the default target: the SIMD targets compared in subprocesses (each test
# forces its own), and an 8.6 GB array of more than 2**31 elements (about 10 GB of free memory and a minute).
XENTCPP_TEST_HUGE=1 "$python" -m pytest ../tests -c ../pyproject.toml --rootdir .. -p no:cacheprovider -q -s -m slow

