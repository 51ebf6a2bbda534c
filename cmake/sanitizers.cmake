# XENTCPP_SANITIZE: AddressSanitizer and UndefinedBehaviorSanitizer on every target of the build (the
# core, the C++ tests, the extension when built), every report fatal (-fno-sanitize-recover) so that
# ctest fails on it. XENTCPP_FUZZ adds libFuzzer's coverage instrumentation (Clang only) on top.
# Note: the float checks (float-divide-by-zero, float-cast-overflow) stay off: 0/0 -> NaN for a mean
# over nothing and inf -> float are the documented IEEE results, not bugs.
if(NOT (XENTCPP_SANITIZE OR XENTCPP_FUZZ))
  return()
endif()
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  message(FATAL_ERROR "XENTCPP_SANITIZE and XENTCPP_FUZZ need GCC or Clang, not ${CMAKE_CXX_COMPILER_ID}")
endif()
set(XENTCPP_SANITIZER_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
add_compile_options(${XENTCPP_SANITIZER_FLAGS})
add_link_options(${XENTCPP_SANITIZER_FLAGS})
if(XENTCPP_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "XENTCPP_FUZZ needs Clang (libFuzzer): configure with -DCMAKE_CXX_COMPILER=clang++")
  endif()
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
