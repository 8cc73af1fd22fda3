# Hostile-input builds (docs/testing.md), included by the top-level CMakeLists.txt before
# any target is defined, so the flags reach every library, test and binary of the tree.
#
#   -DDERMFED_SANITIZE=address,undefined   ASan + UBSan for the whole build (gcc or clang);
#                                          UBSan findings abort (-fno-sanitize-recover).
#   -DDERMFED_FUZZ=ON                      the libFuzzer targets of tests/fuzz (clang only);
#                                          implies DERMFED_SANITIZE=address,undefined and adds
#                                          coverage instrumentation (-fsanitize=fuzzer-no-link).
#
# Debian's LibTorch, gRPC, Protobuf and Abseil stay uninstrumented: ASan still checks every
# access our code makes, and the leak checker sees their allocations (tests/sanitizers/*.supp
# lists the known ones).
set(DERMFED_SANITIZE "" CACHE STRING
    "Sanitizers for the whole build, as -fsanitize takes them (e.g. address,undefined)")
option(DERMFED_FUZZ "Build the libFuzzer targets in tests/fuzz (clang; implies ASan + UBSan)" OFF)

if(DERMFED_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR
            "DERMFED_FUZZ=ON needs clang (libFuzzer), but the C++ compiler is "
            "${CMAKE_CXX_COMPILER_ID} (${CMAKE_CXX_COMPILER}). Configure a fresh build folder "
            "with -DCMAKE_CXX_COMPILER=clang++-14 (Debian: clang-14 libclang-rt-14-dev), or use "
            "tests/fuzz/run_fuzz.sh, which does.")
  endif()
  if(DERMFED_MODEL_ONLY)
    message(FATAL_ERROR "DERMFED_FUZZ=ON needs the full build (DERMFED_MODEL_ONLY=OFF)")
  endif()
  if(NOT DERMFED_BUILD_TESTS)
    message(FATAL_ERROR "DERMFED_FUZZ=ON builds its targets under tests/: set DERMFED_BUILD_TESTS=ON")
  endif()
  if(DERMFED_SANITIZE STREQUAL "")
    set(DERMFED_SANITIZE "address,undefined" CACHE STRING
        "Sanitizers for the whole build, as -fsanitize takes them (e.g. address,undefined)" FORCE)
  endif()
endif()

if(NOT DERMFED_SANITIZE STREQUAL "")
  if(NOT DERMFED_SANITIZE MATCHES "^[a-z,-]+$")
    message(FATAL_ERROR "DERMFED_SANITIZE='${DERMFED_SANITIZE}': expected a comma-separated list "
                        "such as address,undefined")
  endif()
  message(STATUS "dermfed: sanitizers ${DERMFED_SANITIZE} for the whole build")
  add_compile_options(-fsanitize=${DERMFED_SANITIZE} -fno-omit-frame-pointer -g)
  add_link_options(-fsanitize=${DERMFED_SANITIZE})
  if(DERMFED_SANITIZE MATCHES "undefined")
    # A UBSan finding stops the test (or the fuzzer) instead of scrolling past in the log.
    add_compile_options(-fno-sanitize-recover=undefined)
  endif()
endif()

if(DERMFED_FUZZ)
  message(STATUS "dermfed: libFuzzer coverage instrumentation; fuzz targets in tests/fuzz")
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()
