/* routes_runs — stub: being written. */
#include "api/api.h"

const ApiRoute api_routes_runs[] = {{NULL, NULL, API_ROLE_NONE, NULL}};
