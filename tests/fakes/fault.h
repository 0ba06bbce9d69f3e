/*
 * fault.h -- fault injection for the test doubles.
 *
 * A double calls fault_check(f, "op") at the top of each operation.  A
 * test arms a rule with fault_arm(f, "op", n, rc): the n-th call of "op"
 * from now on (1 = the next one) fails with rc; with XM_FAULT_ALWAYS as n
 * every later call fails.  Rules are counted per operation name.  This is
 * the "fail the Nth call of X with error E" model of SQLite's crash VFS.
 */
#ifndef XM_TEST_FAULT_H
#define XM_TEST_FAULT_H

#define XM_FAULT_RULES 16
#define XM_FAULT_ALWAYS 0u

struct fault_rule {
    char op[32];
    unsigned calls;     /* calls of op seen since armed */
    unsigned nth;       /* fail call number nth; 0 = every call */
    int rc;
    int active;
};

#define XM_FAULT_OPS 64

struct fault {
    struct fault_rule rules[XM_FAULT_RULES];
    struct {
        char op[32];
        unsigned calls;
    } counts[XM_FAULT_OPS];  /* calls per op, armed or not */
    unsigned total_calls;    /* every checked call, for "fail at step N" */
};

void fault_init(struct fault *f);
/* Arm a rule; returns 0, or -1 when the table is full. */
int fault_arm(struct fault *f, const char *op, unsigned nth, int rc);
void fault_clear(struct fault *f);
/* 0 to go on, or the error code the operation must return. */
int fault_check(struct fault *f, const char *op);
/* How many times op has been called since init (armed or not). */
unsigned fault_count(const struct fault *f, const char *op);

#endif
