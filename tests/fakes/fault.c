/*
 * fault.c -- per-operation call counting and armed failures for the
 * test doubles (see fault.h).
 */
#include <stdio.h>
#include <string.h>

#include "fault.h"

void
fault_init(struct fault *f)
{
    memset(f, 0, sizeof(*f));
}

void
fault_clear(struct fault *f)
{
    memset(f->rules, 0, sizeof(f->rules));
}

int
fault_arm(struct fault *f, const char *op, unsigned nth, int rc)
{
    for (unsigned i = 0; i < XM_FAULT_RULES; i++) {
        struct fault_rule *r = &f->rules[i];
        if (r->active)
            continue;
        snprintf(r->op, sizeof(r->op), "%s", op);
        r->calls = 0;
        r->nth = nth;
        r->rc = rc;
        r->active = 1;
        return 0;
    }
    return -1;
}

static void
count_call(struct fault *f, const char *op)
{
    for (unsigned i = 0; i < XM_FAULT_OPS; i++) {
        if (f->counts[i].op[0] == '\0') {
            snprintf(f->counts[i].op, sizeof(f->counts[i].op), "%s", op);
            f->counts[i].calls = 1;
            return;
        }
        if (strcmp(f->counts[i].op, op) == 0) {
            f->counts[i].calls++;
            return;
        }
    }
}

unsigned
fault_count(const struct fault *f, const char *op)
{
    for (unsigned i = 0; i < XM_FAULT_OPS; i++)
        if (strcmp(f->counts[i].op, op) == 0)
            return f->counts[i].calls;
    return 0;
}

int
fault_check(struct fault *f, const char *op)
{
    f->total_calls++;
    count_call(f, op);
    for (unsigned i = 0; i < XM_FAULT_RULES; i++) {
        struct fault_rule *r = &f->rules[i];
        if (!r->active || strcmp(r->op, op) != 0)
            continue;
        r->calls++;
        if (r->nth == XM_FAULT_ALWAYS)
            return r->rc;
        if (r->calls == r->nth) {
            r->active = 0;
            return r->rc;
        }
    }
    return 0;
}
