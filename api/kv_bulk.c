/* kv_bulk — the bulk PATCH of variables, connections and pools (see kv_bulk.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/kv_bulk.h"
#include "core/util.h"

static void bulk_error(cJSON *errors, const char *msg, int status)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "error", msg);
    cJSON_AddNumberToObject(e, "status_code", status);
    cJSON_AddItemToArray(errors, e);
}

/* The result object of one action kind (create/update/delete), made on first use. */
static cJSON *bulk_result(cJSON *resp, const char *kind)
{
    cJSON *o = cJSON_GetObjectItemCaseSensitive(resp, kind);
    if (cJSON_IsObject(o)) return o;
    o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "success", cJSON_CreateArray());
    cJSON_AddItemToObject(o, "errors", cJSON_CreateArray());
    cJSON_ReplaceItemInObjectCaseSensitive(resp, kind, o);
    return o;
}

static const char *entity_key(const KvbOps *ops, const cJSON *e)
{
    return cJSON_IsString(e) ? e->valuestring : kvc_jstr(e, ops->key_field);
}

/* Validate the whole body before doing anything: 0 ok, -1 after answering 422. */
static int bulk_validate(ApiResp *out, const cJSON *body, const KvbOps *ops)
{
    static const char *const top[] = {"actions", NULL};
    if (api_body_only(out, body, top) != 0) return -1;
    const cJSON *actions = cJSON_GetObjectItemCaseSensitive(body, "actions");
    if (!actions) {
        api_error_422(out, "body", "actions", "Field required");
        return -1;
    }
    if (!cJSON_IsArray(actions)) {
        api_error_422(out, "body", "actions", "Input should be a valid list");
        return -1;
    }
    int i = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, actions)
    {
        char where[96];
        snprintf(where, sizeof where, "body.actions[%d]", i);
        const char *kind = kvc_jstr(a, "action");
        int create = kind && strcmp(kind, "create") == 0, update = kind && strcmp(kind, "update") == 0,
            del = kind && strcmp(kind, "delete") == 0;
        if (!cJSON_IsObject(a) || !(create || update || del)) {
            api_error_422(out, where, "action", "Input tag does not match any of the expected tags: 'create', "
                                                "'update', 'delete'");
            return -1;
        }
        static const char *const f_create[] = {"action", "entities", "action_on_existence", NULL};
        static const char *const f_update[] = {"action", "entities", "action_on_non_existence", "update_mask", NULL};
        static const char *const f_delete[] = {"action", "entities", "action_on_non_existence", NULL};
        for (const cJSON *it = a->child; it; it = it->next) {
            const char *const *allowed = create ? f_create : update ? f_update : f_delete;
            int ok = 0;
            for (int k = 0; allowed[k] && !ok; k++) ok = strcmp(allowed[k], it->string) == 0;
            if (!ok) {
                api_error_422(out, where, it->string, "Extra inputs are not permitted");
                return -1;
            }
        }
        const cJSON *on = cJSON_GetObjectItemCaseSensitive(a, create ? "action_on_existence" : "action_on_non_existence");
        if (on && !(cJSON_IsString(on) && (strcmp(on->valuestring, "fail") == 0 || strcmp(on->valuestring, "skip") == 0 ||
                                           (create && strcmp(on->valuestring, "overwrite") == 0)))) {
            api_error_422(out, where, on->string,
                          create ? "Input should be 'fail', 'skip' or 'overwrite'" : "Input should be 'fail' or 'skip'");
            return -1;
        }
        const cJSON *mask = cJSON_GetObjectItemCaseSensitive(a, "update_mask");
        if (mask && !cJSON_IsNull(mask)) {
            const cJSON *m;
            int bad = !cJSON_IsArray(mask);
            cJSON_ArrayForEach(m, mask)
            {
                int ok = 0;
                for (int k = 0; cJSON_IsString(m) && ops->mask_fields[k] && !ok; k++)
                    ok = strcmp(ops->mask_fields[k], m->valuestring) == 0;
                bad |= !ok;
            }
            if (bad) {
                api_error_422(out, where, "update_mask", "Input should be a list of field names to update");
                return -1;
            }
        }
        const cJSON *ents = cJSON_GetObjectItemCaseSensitive(a, "entities");
        if (!cJSON_IsArray(ents)) {
            api_error_422(out, where, "entities", ents ? "Input should be a valid list" : "Field required");
            return -1;
        }
        int j = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, ents)
        {
            char ew[128];
            snprintf(ew, sizeof ew, "body.actions[%d].entities[%d]", i, j++);
            if (del && cJSON_IsString(e)) {
                if (!kvc_text_ok(e->valuestring) || !*e->valuestring) {
                    api_error_422(out, ew, NULL, "Input should be a non-empty string");
                    return -1;
                }
                continue;
            }
            if (kvc_body_check(out, e, ops->spec, ew) != 0) return -1;
        }
        i++;
    }
    return 0;
}

void kvb_run(ApiReq *r, ApiResp *out, const KvbOps *ops, const char *audit_event)
{
    Store *s = kvc_store(r, out);
    if (!s) return;
    cJSON *body;
    if (api_body_object(r, out, &body) != 0) return;
    if (bulk_validate(out, body, ops) != 0) {
        cJSON_Delete(body);
        return;
    }
    cJSON *resp = cJSON_CreateObject();
    cJSON_AddNullToObject(resp, "create");
    cJSON_AddNullToObject(resp, "update");
    cJSON_AddNullToObject(resp, "delete");
    const cJSON *a;
    int failed_store = 0;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(body, "actions"))
    {
        const char *kind = kvc_jstr(a, "action");
        int create = strcmp(kind, "create") == 0, del = strcmp(kind, "delete") == 0;
        const char *on = kvc_jstr(a, create ? "action_on_existence" : "action_on_non_existence");
        if (!on) on = "fail";
        cJSON *res = bulk_result(resp, kind);
        cJSON *success = cJSON_GetObjectItemCaseSensitive(res, "success");
        cJSON *errors = cJSON_GetObjectItemCaseSensitive(res, "errors");
        const cJSON *ents = cJSON_GetObjectItemCaseSensitive(a, "entities");
        KvcMulti mask;
        memset(&mask, 0, sizeof mask);
        const cJSON *m;
        cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(a, "update_mask"))
        {
            if (mask.n < KVC_MAX_MULTI) mask.v[mask.n++] = m->valuestring;
        }
        /* As Airflow: with "fail", the action stops before changing anything when one entity
         * already exists (create) or does not (update, delete). */
        StrBuf clash = {0};
        int nclash = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, ents)
        {
            const char *key = entity_key(ops, e);
            int ex = ops->exists(r, s, key);
            if (ex < 0) {
                failed_store = 1;
                break;
            }
            if (create ? ex == 1 : ex == 0) sb_printf(&clash, "%s'%s'", nclash++ ? ", " : "", key);
        }
        if (failed_store) {
            sb_free(&clash);
            break;
        }
        if (nclash && strcmp(on, "fail") == 0) {
            char msg[1200];
            snprintf(msg, sizeof msg, "The %s with these %ss: {%s} %s.", ops->what, ops->key_field, sb_str(&clash),
                     create ? "already exist" : "were not found");
            bulk_error(errors, msg, create ? 409 : 404);
            sb_free(&clash);
            continue;
        }
        sb_free(&clash);
        cJSON_ArrayForEach(e, ents)
        {
            const char *key = entity_key(ops, e);
            int ex = ops->exists(r, s, key);
            if (ex < 0) {
                failed_store = 1;
                break;
            }
            int status = 0, rc;
            char err[512] = "";
            if (create && ex == 1) {
                if (strcmp(on, "skip") == 0) continue;
                rc = ops->update(r, s, e, &mask, &status, err, sizeof err); /* overwrite */
            } else if (create) {
                rc = ops->create(r, s, e, &status, err, sizeof err);
            } else if (ex == 0) {
                continue; /* skip: nothing to update or delete */
            } else if (del) {
                rc = ops->remove(r, s, key, &status, err, sizeof err);
            } else {
                rc = ops->update(r, s, e, &mask, &status, err, sizeof err);
            }
            if (rc == 0) {
                cJSON_AddItemToArray(success, cJSON_CreateString(key));
            } else {
                bulk_error(errors, err, status ? status : 503);
            }
        }
        if (failed_store) break;
    }
    cJSON_Delete(body);
    if (failed_store) {
        cJSON_Delete(resp);
        api_store_error(out, s);
        return;
    }
    char *extra = cJSON_PrintUnformatted(resp);
    api_audit(r, audit_event, NULL, NULL, NULL, extra);
    free(extra);
    api_json(out, 200, resp);
}
