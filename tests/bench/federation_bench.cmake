# federation_transfer_bench: model downloads from a real coordinator through the site's
# FederationClient, timed. Included from tests/bench/CMakeLists.txt; a plain program run by
# tests/bench/federation_bench.sh, not a ctest.
add_executable(federation_transfer_bench ${CMAKE_CURRENT_LIST_DIR}/federation_transfer_bench.cc)
target_link_libraries(federation_transfer_bench PRIVATE dermfed_federation_client)
# tls_socket_bench: a bare mutual-TLS stream over loopback (OpenSSL only), the ceiling the
# download is read against.
add_executable(tls_socket_bench ${CMAKE_CURRENT_LIST_DIR}/tls_socket_bench.cc)
target_link_libraries(tls_socket_bench PRIVATE OpenSSL::SSL OpenSSL::Crypto Threads::Threads)
