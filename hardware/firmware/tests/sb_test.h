/*
 * A tiny assert-based test runner. CHECK records the first failure of a test and returns from
 * it; the runner's last line is "N passed, M failed" so CI can read it.
 */
#ifndef SB_TEST_H
#define SB_TEST_H

#include <stdio.h>

extern int sb_test_failed;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            printf("  %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond);      \
            sb_test_failed = 1;                                                     \
            return;                                                                 \
        }                                                                           \
    } while (0)

#define CHECK_EQ(a, b)                                                              \
    do {                                                                            \
        long long va_ = (long long)(a), vb_ = (long long)(b);                       \
        if (va_ != vb_) {                                                           \
            printf("  %s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, \
                   #a, #b, va_, vb_);                                               \
            sb_test_failed = 1;                                                     \
            return;                                                                 \
        }                                                                           \
    } while (0)

#define TEST(name) void name(void)

/* prototypes of every test (test_list.h is the registry) */
#define X(name) void name(void);
#include "test_list.h"
#undef X

#endif
