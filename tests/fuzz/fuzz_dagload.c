/* libFuzzer target: the DAG loader end to end (YAML or JSON text → DagBag). The first byte
 * picks the syntax so one corpus covers both; nothing an input holds may crash, hang or leak.
 *   make fuzz   (or: bin/fuzz/fuzz_dagload -max_total_time=600 tests/fuzz/corpus/fuzz_dagload) */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/dagbag.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    const char *name = (data[0] & 1) ? "fuzz.json" : "fuzz.yml";
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    DagBag b;
    dagbag_init(&b);
    DagLoadOptions opt = {.root = "/nonexistent", .default_timezone = "UTC", .now_us = 1767225600000000LL};
    dagbag_load_text(&b, name, text, size - 1, &opt);
    for (size_t i = 0; i < b.n_dags; i++) {
        cJSON *j = dag_to_json(b.dags[i]);
        cJSON_Delete(j);
    }
    dagbag_free(&b);
    free(text);
    return 0;
}
