/*
 * hv_fake.h -- an in-process hypervisor for unit tests.
 *
 * One hv_fake is one host: its domains (with a JSON config each), its
 * memory, and its loaded livepatch payloads.  hv_fake_connect gives the
 * xm_hv interface to it.  The rules it enforces:
 *  - memory: a domain holds mem_kib of the host's free_kib while it
 *    exists (adding one that does not fit fails with XM_ERR_NOMEM, as
 *    does a restore); destroy gives it back;
 *  - livepatch: upload of a loaded name is XM_ERR_EXISTS; apply and
 *    replace need CHECKED, revert APPLIED, unload CHECKED, else
 *    XM_ERR_STATE; replace reverts every other applied payload; one
 *    action at a time (XM_ERR_BUSY while one is deferred, see
 *    hv_fake_lp_defer);
 *  - shutdown: the guest is at once shut down (XM_DOM_DYING, its memory
 *    held until destroy) unless hv_fake_ignore_shutdown made it deaf;
 *    create makes a paused domain from a config of default_config's
 *    shape (c_info.uuid, b_info.max_memkb, b_info.max_vcpus) and
 *    completes at the next afterpoll;
 *  - migration: migrate_send writes a stream that opens as libxl's
 *    does (hv_fake_libxl_prefix: its v2 header and LIBXC_CONTEXT record
 *    header) and goes on as small text (magic line "XMFAKE-STREAM 1",
 *    the domain's fields, hv_fake_stream_zeros' zero bytes, its config)
 *    to the fd and
 *    completes at the first afterpoll after it is all written; the source
 *    domain stays, suspended (reported XM_DOM_PAUSED, hv_fake_suspended
 *    says so), until resume or destroy.  migrate_recv on another fake
 *    reads that stream and, when it is whole, creates the domain paused
 *    under the given name with config_json.  So two fakes joined by a
 *    socketpair and one poll loop migrate a guest.  Like libxl 4.17,
 *    a send or a restore whose stream fails within those first
 *    HV_FAKE_LIBXL_PREFIX_LEN bytes kills the process (abort, with a
 *    message on stderr): libxl calls an unset callback there.  Fds are polled
 *    through beforepoll/afterpoll and never read or written otherwise
 *    than when poll said so, so nothing blocks.
 *
 * Every operation first calls fault_check (tests/fakes/fault.h) with its
 * name: "list_domains", "hostinfo", "domain_config", "rename", "pause",
 * "unpause", "resume", "destroy", "shutdown", "create", "migrate_send",
 * "migrate_recv",
 * "lp_upload", "lp_get", "lp_list", and for lp_action both "lp_action"
 * and then "lp_apply" / "lp_revert" / "lp_replace" / "lp_unload".  An
 * armed rc is returned as is.  Asynchronous failures: "migrate_send_done",
 * "migrate_recv_done" and "create_done" are checked when the operation
 * would complete and turn its result into the armed rc (the domain is
 * then not suspended / not created); "lp_action_result" is checked when a
 * livepatch action takes effect: an armed rc (a -errno value, e.g.
 * -ETIMEDOUT) goes into the payload's status rc and the state stays.
 * Everything is deterministic: domids count up from 1 (or the given one),
 * lists come out in domid / upload order.
 */
#ifndef XM_TEST_HV_FAKE_H
#define XM_TEST_HV_FAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fault.h"
#include "xm_hv.h"

struct hv_fake;

/* A host with 16 GiB total and free, 8 CPUs, Xen "4.17.5" extra "",
 * a 20-byte build-id 00 01 02 .. 13, no domains, no payloads. */
struct hv_fake *hv_fake_new(void);
/* Accepts NULL.  Operations still pending are dropped, done not called. */
void hv_fake_free(struct hv_fake *f);
/* The interface to f; close it with xm_hv_close (which reports pending
 * operations as XM_ERR_CANCELLED) before hv_fake_free. */
int hv_fake_connect(struct hv_fake *f, struct xm_hv *hv_r);
struct fault *hv_fake_fault(struct hv_fake *f);

/* Replace the host's figures wholesale; free_kib is taken as given, so
 * set it before adding domains. */
void hv_fake_set_hostinfo(struct hv_fake *f, const struct xm_hostinfo *hi);

/*
 * Add a domain (a copy of *d; XM_DOM_TRANSIENT is added when the name
 * says so): domid 0 picks the next free one.  Its config is
 * {"c_info":{"name":..,"uuid":..},"b_info":{"max_memkb":mem_kib,
 * "max_vcpus":vcpus}} unless config_json is given.  XM_ERR_EXISTS for a
 * taken domid or name, XM_ERR_NOMEM when mem_kib exceeds free_kib,
 * XM_ERR_INVAL for an empty name unless XM_DOM_NAMELESS is among its
 * flags (a domain whose xenstore entries are gone: name "").  domid_r
 * (may be NULL) gets the domid; with hv_fake_add_domain, find it with
 * hv_fake_find (a nameless one with hv_fake_find_domid).
 */
int hv_fake_add_domain(struct hv_fake *f, const struct xm_domain *d);
int hv_fake_add_domain_config(struct hv_fake *f, const struct xm_domain *d,
                              const char *config_json, uint32_t *domid_r);

/* Test-side peeks, no faults.  The pointers stay valid until the next
 * call that adds or removes a domain. */
const struct xm_domain *hv_fake_find(struct hv_fake *f, const char *name);
const struct xm_domain *hv_fake_find_domid(struct hv_fake *f,
                                           uint32_t domid);
const char *hv_fake_config(struct hv_fake *f, uint32_t domid);
bool hv_fake_suspended(struct hv_fake *f, uint32_t domid);
/* The guest domid ignores shutdown requests from now on. */
void hv_fake_ignore_shutdown(struct hv_fake *f, uint32_t domid);
size_t hv_fake_count_domains(struct hv_fake *f);
uint64_t hv_fake_free_kib(struct hv_fake *f);
/* Asynchronous operations started and not yet completed. */
unsigned hv_fake_pending(struct hv_fake *f);
/* The streams of later sends carry n zero bytes (a guest's untouched
 * memory) before the config; at most 64 MiB. */
int hv_fake_stream_zeros(struct hv_fake *f, size_t n);
/* With text_pages, every fourth 4 KiB page of those bytes holds a line
 * of text over and over (memory in use, compressible); the receiver
 * checks them as it checks the zeros. */
void hv_fake_stream_pattern(struct hv_fake *f, bool text_pages);
/* The opening of every stream (see above). */
#define HV_FAKE_LIBXL_PREFIX_LEN 24
extern const uint8_t hv_fake_libxl_prefix[HV_FAKE_LIBXL_PREFIX_LEN];

/*
 * Make the next livepatch actions asynchronous, as in Xen: the action
 * returns 0, the payload reports rc -EAGAIN for the next `gets` lp_get
 * (or lp_list) calls that see it, then the action takes effect.  0 (the
 * default) applies actions at once.
 */
void hv_fake_lp_defer(struct hv_fake *f, unsigned gets);

#endif
