// The dashboard's static files (coordinator/dashboard/ and Debian's Chart.js), compiled into
// the coordinator so a deployment needs no web root.
#ifndef DERMFED_COORDINATOR_DASHBOARD_ASSETS_H_
#define DERMFED_COORDINATOR_DASHBOARD_ASSETS_H_

#include <cstddef>
#include <vector>

namespace dermfed::coordinator {

struct EmbeddedFile {
  const char* url;           // "/", "/static/dashboard.js", ...
  const char* content_type;
  const unsigned char* data;
  size_t size;
};

const std::vector<EmbeddedFile>& DashboardAssets();

}  // namespace dermfed::coordinator

#endif  // DERMFED_COORDINATOR_DASHBOARD_ASSETS_H_
