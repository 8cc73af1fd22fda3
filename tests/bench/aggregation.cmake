# aggregation_bench: FedAvg's streaming fold against a STREAM triad in the same process
# (params/s vs elements/s). Included from tests/bench/CMakeLists.txt; a plain program, not a
# ctest. Needs only the torch-free strategies library.
add_executable(aggregation_bench ${CMAKE_CURRENT_LIST_DIR}/aggregation_bench.cc)
target_link_libraries(aggregation_bench PRIVATE dermfed_strategies)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" OR CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  # The triad baseline must be compiled as well as the fold it is compared with.
  target_compile_options(aggregation_bench PRIVATE -O3)
endif()
