/* routes_tis — stub: being written. */
#include "api/api.h"

const ApiRoute api_routes_tis[] = {{NULL, NULL, API_ROLE_NONE, NULL}};
