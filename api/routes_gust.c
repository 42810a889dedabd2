/* routes_gust — stub: being written. */
#include "api/api.h"

const ApiRoute api_routes_gust[] = {{NULL, NULL, API_ROLE_NONE, NULL}};
