# The BLAS of linear_cross_entropy's GEMMs: scipy-openblas32, the OpenBLAS build that NumPy and SciPy
# make for their own wheels (prefixed symbols, 32-bit integers, kernels chosen for the CPU at run
# time), found through its Python package, which ships the CMake config and the headers. pip installs
# it as a build requirement (pyproject.toml); a plain CMake build finds it in the Python environment
# of the first python3 on PATH, or in -DXENTCPP_OPENBLAS_DIR=<its lib/cmake/openblas directory>.
set(XENTCPP_OPENBLAS_DIR "" CACHE PATH "scipy-openblas32's lib/cmake/openblas (default: ask Python)")
if(NOT XENTCPP_OPENBLAS_DIR)
  find_package(Python COMPONENTS Interpreter REQUIRED)
  execute_process(
    COMMAND "${Python_EXECUTABLE}" -c "import scipy_openblas32 as s; print(s.get_lib_dir(), end='')"
    OUTPUT_VARIABLE _xentcpp_openblas_lib RESULT_VARIABLE _xentcpp_openblas_status ERROR_QUIET)
  if(NOT _xentcpp_openblas_status EQUAL 0)
    message(FATAL_ERROR "xentcpp needs scipy-openblas32 (pip install scipy-openblas32) in the Python of "
                        "${Python_EXECUTABLE}, or -DXENTCPP_OPENBLAS_DIR=<its lib/cmake/openblas>")
  endif()
  set(XENTCPP_OPENBLAS_DIR "${_xentcpp_openblas_lib}/cmake/openblas")
endif()
find_package(OpenBLAS CONFIG REQUIRED PATHS "${XENTCPP_OPENBLAS_DIR}" NO_DEFAULT_PATH)
message(STATUS "xentcpp BLAS: scipy-openblas32 ${OpenBLAS_VERSION} (${OpenBLAS_LIBRARIES})")
