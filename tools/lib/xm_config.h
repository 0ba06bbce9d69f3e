/*
 * xm_config.h -- the agent's configuration.
 *
 * /etc/xenmaint/xenmaint.conf is written in xl.cfg syntax and read with
 * libxlutil, like a guest config: no parser of our own.  Example:
 *
 *     host_name = "A"
 *     listen_address = "192.0.2.1"
 *     listen_port = 7474
 *     peers = [ "B=192.0.2.2:7474", "C=192.0.2.3:7474" ]
 *     tls_ca = "/etc/xenmaint/pki/ca.crt"
 *     tls_cert = "/etc/xenmaint/pki/host.crt"
 *     tls_key = "/etc/xenmaint/pki/host.key"
 *     state_dir = "/var/lib/xenmaint"
 *     max_parallel = 2
 *     migrate_timeout = 600
 *     compress = "auto"
 *
 * Loading validates every value; an error names the file, the line where
 * libxlutil could tell it, and the setting.
 */
#ifndef XM_CONFIG_H
#define XM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define XM_HOSTNAME_MAX 63
#define XM_ADDRESS_MAX 63
#define XM_PEERS_MAX 64
#define XM_DEFAULT_PORT 7474
#define XM_COMPRESS_SPEC_MAX 31     /* "zstd:22" and the like */

struct xm_peer_cfg {
    char name[XM_HOSTNAME_MAX + 1];
    char address[XM_ADDRESS_MAX + 1];
    uint16_t port;
};

struct xm_config {
    char host_name[XM_HOSTNAME_MAX + 1];
    char listen_address[XM_ADDRESS_MAX + 1];
    uint16_t listen_port;
    struct xm_peer_cfg *peers;
    unsigned n_peers;
    char *tls_ca;               /* all three or none */
    char *tls_cert;
    char *tls_key;
    char *state_dir;
    unsigned max_parallel;      /* concurrent migrations */
    unsigned migrate_timeout_s; /* per guest */
    unsigned notice_s;          /* default maintenance notice */
    unsigned jobs_kept;         /* finished jobs left in xenstore */
    char compress[XM_COMPRESS_SPEC_MAX + 1];  /* migration streams'
                                 * compression when a drain does not say:
                                 * auto, none, zero, lz4, zstd[:LEVEL]
                                 * (checked
                                 * with xm_comp_spec_parse) */
};

void xm_config_init(struct xm_config *cfg);
void xm_config_dispose(struct xm_config *cfg);

/* Load and validate.  On failure err_r holds one line naming the
 * problem (file:line where known). */
int xm_config_load_file(const char *path, struct xm_config *cfg_r,
                        char *err_r, size_t errlen);
int xm_config_load_data(const char *name, const char *data, size_t len,
                        struct xm_config *cfg_r, char *err_r,
                        size_t errlen);

/* True when s is a valid host name: [A-Za-z0-9._-]{1,63}. */
int xm_config_valid_name(const char *s);

/* The peer of that name, or NULL. */
const struct xm_peer_cfg *xm_config_peer(const struct xm_config *cfg,
                                         const char *name);

#endif /* XM_CONFIG_H */
