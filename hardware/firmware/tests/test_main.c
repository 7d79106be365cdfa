#include <stdio.h>

#include "sb_test.h"

int sb_test_failed;

typedef struct {
    const char *name;
    void (*fn)(void);
} entry_t;

static const entry_t tests[] = {
#define X(name) {#name, name},
#include "test_list.h"
#undef X
};

int main(void)
{
    unsigned i, passed = 0, failed = 0;
    for (i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        sb_test_failed = 0;
        tests[i].fn();
        if (sb_test_failed) {
            printf("FAIL %s\n", tests[i].name);
            failed++;
        } else {
            printf("ok   %s\n", tests[i].name);
            passed++;
        }
    }
    printf("%u passed, %u failed\n", passed, failed);
    return failed ? 1 : 0;
}
