/* routes_kv — stub: being written. */
#include "api/api.h"

const ApiRoute api_routes_kv[] = {{NULL, NULL, API_ROLE_NONE, NULL}};
