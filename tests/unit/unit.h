/* unit.h — the smallest harness that makes one CUnit suite per test_*.c file.
 *
 *   static void test_cron_steps_and_ranges(void) { CU_ASSERT_EQUAL(...); }
 *   static const UnitTest tests[] = { UNIT(test_cron_steps_and_ranges), {0} };
 *   UNIT_MAIN("cron", tests)
 *
 * The binary runs its suite with CUnit's basic runner (which prints the "Run Summary"
 * CI reads) and exits non-zero if any assertion failed. Tests run from the repository
 * root, so fixtures are at tests/fixtures/... */
#ifndef GUST_TEST_UNIT_H
#define GUST_TEST_UNIT_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct UnitTest {
    const char *name;
    void (*fn)(void);
} UnitTest;

#define UNIT(fn) {#fn, fn}

/* String equality that prints both sides when it fails. */
#define ASSERT_STR_EQ(actual, expected)                                                      \
    do {                                                                                     \
        const char *a_ = (actual), *e_ = (expected);                                         \
        int ok_ = (a_ && e_) ? strcmp(a_, e_) == 0 : a_ == e_;                               \
        if (!ok_) fprintf(stderr, "\n  %s:%d: got \"%s\", want \"%s\"\n", __FILE__, __LINE__, \
                          a_ ? a_ : "(null)", e_ ? e_ : "(null)");                          \
        CU_ASSERT(ok_);                                                                      \
    } while (0)

/* Substring check that prints the haystack when it fails. */
#define ASSERT_CONTAINS(hay, needle)                                                           \
    do {                                                                                       \
        const char *h_ = (hay), *n_ = (needle);                                                \
        int ok_ = h_ && strstr(h_, n_) != NULL;                                                \
        if (!ok_) fprintf(stderr, "\n  %s:%d: \"%s\" does not contain \"%s\"\n", __FILE__, __LINE__, \
                          h_ ? h_ : "(null)", n_);                                             \
        CU_ASSERT(ok_);                                                                        \
    } while (0)

static inline int unit_run(const char *suite_name, const UnitTest *tests)
{
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite suite = CU_add_suite(suite_name, NULL, NULL);
    if (!suite) return 2;
    for (const UnitTest *t = tests; t->name; t++)
        if (!CU_add_test(suite, t->name, t->fn)) return 2;
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failures ? 1 : 0;
}

#define UNIT_MAIN(suite_name, tests) \
    int main(void) { return unit_run(suite_name, tests); }

#endif
