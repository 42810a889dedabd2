/* routes_dags — stub: being written. */
#include "api/api.h"

const ApiRoute api_routes_dags[] = {{NULL, NULL, API_ROLE_NONE, NULL}};
