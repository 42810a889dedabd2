/* routes_meta — stub: being written. */
#include "api/api.h"

const ApiRoute api_routes_meta[] = {{NULL, NULL, API_ROLE_NONE, NULL}};
