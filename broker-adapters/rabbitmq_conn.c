/* rabbitmq_conn — one AMQP connection: TCP (with a connect timeout; librabbitmq 0.11 has
 * none of its own for the TCP part) or TLS, login with our capabilities (consumer cancel
 * notifications, publisher confirms), the three channels and the fixed topology; and the
 * helpers that turn a failed RPC into a project error or a reopened channel.
 *
 * Errors are one line naming the server and what is wrong, never the password:
 *   cannot connect to RabbitMQ at 127.0.0.1:5999: connection refused
 *   RabbitMQ at 127.0.0.1:5672: login refused for user 'gust' (ACCESS_REFUSED) */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>

#include "broker-adapters/rabbitmq_int.h"
#include "core/log.h"
#include "core/util.h"

/* TCP connect with a timeout; the socket is non-blocking, as librabbitmq wants it. */
static int tcp_connect(const RmqConfig *c, char *why, size_t whylen)
{
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", c->port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(c->host, portstr, &hints, &res);
    if (gai != 0) {
        snprintf(why, whylen, "cannot resolve host '%s': %s", c->host, gai_strerror(gai));
        return -1;
    }
    int64_t deadline = rmq_now_ms() + c->connect_timeout_ms;
    int fd = -1, last_errno = 0, timed_out = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        int s = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (s < 0) {
            last_errno = errno;
            continue;
        }
        int rc = connect(s, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            struct pollfd pfd = {s, POLLOUT, 0};
            int64_t left = deadline - rmq_now_ms();
            int pr = left > 0 ? poll(&pfd, 1, (int)left) : 0;
            if (pr == 0) {
                timed_out = 1;
                close(s);
                continue;
            }
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (pr < 0 || getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) soerr = errno;
            rc = soerr ? -1 : 0;
            if (soerr) errno = soerr;
        }
        if (rc != 0) {
            last_errno = errno;
            close(s);
            continue;
        }
        int one = 1;
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        fd = s;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        char eb[128];
        if (last_errno) snprintf(why, whylen, "%s", rmq_errno_text(last_errno, eb, sizeof eb));
        else if (timed_out) snprintf(why, whylen, "no answer within %d ms", c->connect_timeout_ms);
        else snprintf(why, whylen, "no address");
    }
    return fd;
}

/* "ACCESS_REFUSED - Login was refused ..." → "ACCESS_REFUSED". */
static void reply_code_name(const char *text, char *out, size_t n)
{
    size_t k = strcspn(text, " -");
    if (k >= n) k = n - 1;
    memcpy(out, text, k);
    out[k] = '\0';
}

/* The server's reason for closing a channel or the connection, as text; fills *code. */
static const char *server_reason(amqp_rpc_reply_t r, int *code, char *out, size_t n)
{
    *code = 0;
    out[0] = '\0';
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
        snprintf(out, n, "%s", amqp_error_string2(r.library_error));
        rmq_lower_first(out);
    } else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) {
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = r.reply.decoded;
            *code = m->reply_code;
            rmq_bytes_str(m->reply_text, out, n);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = r.reply.decoded;
            *code = m->reply_code;
            rmq_bytes_str(m->reply_text, out, n);
        } else {
            snprintf(out, n, "unexpected method 0x%08x", (unsigned)r.reply.id);
        }
    } else {
        snprintf(out, n, "no reply");
    }
    return out;
}

static void describe_login_error(const RmqConfig *c, amqp_rpc_reply_t r, char *err, size_t errlen)
{
    int code;
    char text[512], name[64];
    server_reason(r, &code, text, sizeof text);
    reply_code_name(text, name, sizeof name);
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && code == AMQP_ACCESS_REFUSED) {
        snprintf(err, errlen, "RabbitMQ at %s: login refused for user '%s' (%s)", c->where, c->user, name);
    } else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && code == AMQP_NOT_ALLOWED &&
               strstr(text, "not found")) {
        snprintf(err, errlen, "RabbitMQ at %s: vhost '%s' not found (%s)", c->where, c->vhost, name);
    } else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && code == AMQP_NOT_ALLOWED) {
        snprintf(err, errlen, "RabbitMQ at %s: access to vhost '%s' refused for user '%s' (%s)", c->where,
                 c->vhost, c->user, name);
    } else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) {
        snprintf(err, errlen, "RabbitMQ at %s: login failed: %s", c->where, text);
    } else if (r.library_error == AMQP_STATUS_CONNECTION_CLOSED || r.library_error == AMQP_STATUS_SOCKET_CLOSED) {
        snprintf(err, errlen, "RabbitMQ at %s: the server closed the connection during login for user '%s' "
                 "(wrong password or vhost?)", c->where, c->user);
    } else if (r.library_error == AMQP_STATUS_TIMEOUT) {
        snprintf(err, errlen, "RabbitMQ at %s: no answer to the AMQP handshake within %d ms "
                 "(server stuck, or not an AMQP port?)", c->where,
                 c->connect_timeout_ms);
    } else {
        snprintf(err, errlen, "RabbitMQ at %s: login failed: %s", c->where, text);
    }
}

static void tv_from_ms(struct timeval *tv, int ms)
{
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;
}

/* Answer a server's channel.close / connection.close. */
void rmq_send_close_ok(amqp_connection_state_t conn, amqp_channel_t ch, int connection)
{
    if (connection) {
        amqp_connection_close_ok_t ok = {0};
        amqp_send_method(conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    } else {
        amqp_channel_close_ok_t ok = {0};
        amqp_send_method(conn, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    }
}

/* An RPC on a channel failed. A channel error closed only that channel: answer, reopen it
 * (confirm.select again on the publish channel) and return 1 with the reason in err. A
 * connection-level failure returns -1 (the caller treats the connection as lost). */
int rmq_rpc_failed(amqp_connection_state_t conn, const RmqConfig *c, amqp_channel_t ch, amqp_rpc_reply_t r,
                      const char *what, char *err, size_t errlen)
{
    int code;
    char text[512];
    server_reason(r, &code, text, sizeof text);
    snprintf(err, errlen, "RabbitMQ at %s: %s: %s", c->where, what, text);
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        rmq_send_close_ok(conn, ch, 0);
        amqp_maybe_release_buffers_on_channel(conn, ch);
        amqp_channel_open(conn, ch);
        amqp_rpc_reply_t o = amqp_get_rpc_reply(conn);
        if (o.reply_type != AMQP_RESPONSE_NORMAL) return -1;
        if (ch == CH_PUB) {
            amqp_confirm_select(conn, ch);
            if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL) return -1;
        }
        return 1;
    }
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CONNECTION_CLOSE_METHOD)
        rmq_send_close_ok(conn, 0, 1);
    return -1;
}

static int declare_exchange(amqp_connection_state_t conn, const RmqConfig *c, const char *name, const char *type,
                            char *err, size_t errlen)
{
    amqp_exchange_declare(conn, CH_ADM, amqp_cstring_bytes(name), amqp_cstring_bytes(type), 0, 1, 0, 0,
                          amqp_empty_table);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return 0;
    char what[160];
    snprintf(what, sizeof what, "cannot declare exchange '%s'", name);
    return rmq_rpc_failed(conn, c, CH_ADM, r, what, err, errlen);
}

/* Declare a task queue and bind it: 0 done, 1 refused (err), -1 connection lost (err). */
int rmq_declare_queue(amqp_connection_state_t conn, const RmqConfig *c, const char *name, char *err,
                         size_t errlen)
{
    amqp_table_entry_t e[2];
    e[0].key = amqp_cstring_bytes("x-dead-letter-exchange");
    e[0].value.kind = AMQP_FIELD_KIND_UTF8;
    e[0].value.value.bytes = amqp_cstring_bytes(RMQ_DLX);
    if (c->quorum) {
        e[1].key = amqp_cstring_bytes("x-queue-type");
        e[1].value.kind = AMQP_FIELD_KIND_UTF8;
        e[1].value.value.bytes = amqp_cstring_bytes("quorum");
    } else {
        e[1].key = amqp_cstring_bytes("x-max-priority");
        e[1].value.kind = AMQP_FIELD_KIND_I32;
        e[1].value.value.i32 = 10;
    }
    amqp_table_t args = {2, e};
    char what[300];
    amqp_queue_declare(conn, CH_ADM, amqp_cstring_bytes(name), 0, 1, 0, 0, args);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        snprintf(what, sizeof what, "cannot declare queue '%s'%s", name,
                 r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
                         ((amqp_channel_close_t *)r.reply.decoded)->reply_code == AMQP_PRECONDITION_FAILED
                     ? " (it exists with other settings: delete it, or set broker.queue_type to match)"
                     : "");
        int rc = rmq_rpc_failed(conn, c, CH_ADM, r, what, err, errlen);
        amqp_maybe_release_buffers_on_channel(conn, CH_ADM);
        return rc;
    }
    amqp_queue_bind(conn, CH_ADM, amqp_cstring_bytes(name), amqp_cstring_bytes(RMQ_EXCHANGE),
                    amqp_cstring_bytes(name), amqp_empty_table);
    r = amqp_get_rpc_reply(conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        snprintf(what, sizeof what, "cannot bind queue '%s'", name);
        int rc = rmq_rpc_failed(conn, c, CH_ADM, r, what, err, errlen);
        amqp_maybe_release_buffers_on_channel(conn, CH_ADM);
        return rc;
    }
    amqp_maybe_release_buffers_on_channel(conn, CH_ADM);
    return 0;
}

/* Connect, log in, open the channels and declare the fixed topology. */
amqp_connection_state_t rmq_open(const RmqConfig *c, char *err, size_t errlen)
{
    amqp_connection_state_t conn = amqp_new_connection();
    if (!conn) {
        snprintf(err, errlen, "RabbitMQ at %s: out of memory", c->where);
        return NULL;
    }
    struct timeval tv;
    tv_from_ms(&tv, c->connect_timeout_ms);
    if (c->tls) {
        amqp_socket_t *s = amqp_ssl_socket_new(conn);
        if (!s) {
            snprintf(err, errlen, "cannot connect to RabbitMQ at %s: cannot set up TLS", c->where);
            goto fail;
        }
        amqp_ssl_socket_set_verify_peer(s, c->verify);
        amqp_ssl_socket_set_verify_hostname(s, c->verify);
        /* librabbitmq 0.11 does not load the system trust store itself */
        const char *ca = c->cacert[0] ? c->cacert : access(SYSTEM_CA_BUNDLE, R_OK) == 0 ? SYSTEM_CA_BUNDLE : NULL;
        if (c->verify && ca && amqp_ssl_socket_set_cacert(s, ca) != AMQP_STATUS_OK) {
            snprintf(err, errlen, "RabbitMQ at %s: cannot read the CA certificates in %s", c->where, ca);
            goto fail;
        }
        if (c->cert[0] && amqp_ssl_socket_set_key(s, c->cert, c->key[0] ? c->key : c->cert) != AMQP_STATUS_OK) {
            snprintf(err, errlen, "RabbitMQ at %s: cannot read the client certificate %s or its key", c->where,
                     c->cert);
            goto fail;
        }
        errno = 0;
        int rc = amqp_socket_open_noblock(s, c->host, c->port, &tv);
        if (rc != AMQP_STATUS_OK) {
            char eb[128], t[200];
            snprintf(t, sizeof t, "%s", amqp_error_string2(rc));
            rmq_lower_first(t);
            if (rc == AMQP_STATUS_SOCKET_ERROR && errno)
                snprintf(err, errlen, "cannot connect to RabbitMQ at %s: %s", c->where,
                         rmq_errno_text(errno, eb, sizeof eb));
            else if (rc == AMQP_STATUS_SSL_CONNECTION_FAILED)
                snprintf(err, errlen, "cannot connect to RabbitMQ at %s: %s (is TLS enabled on that port?)",
                         c->where, t);
            else if (rc == AMQP_STATUS_SSL_PEER_VERIFY_FAILED || rc == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED)
                snprintf(err, errlen, "cannot connect to RabbitMQ at %s: %s (set cacert= in broker.url, or verify=0 "
                         "to skip the check)", c->where, t);
            else
                snprintf(err, errlen, "cannot connect to RabbitMQ at %s: %s", c->where, t);
            goto fail;
        }
    } else {
        char why[300];
        int fd = tcp_connect(c, why, sizeof why);
        if (fd < 0) {
            snprintf(err, errlen, "cannot connect to RabbitMQ at %s: %s", c->where, why);
            goto fail;
        }
        amqp_socket_t *s = amqp_tcp_socket_new(conn);
        if (!s) {
            close(fd);
            snprintf(err, errlen, "RabbitMQ at %s: out of memory", c->where);
            goto fail;
        }
        amqp_tcp_socket_set_sockfd(s, fd);
    }
    amqp_set_handshake_timeout(conn, &tv);
    struct timeval rpc;
    tv_from_ms(&rpc, RPC_TIMEOUT_MS);
    amqp_set_rpc_timeout(conn, &rpc);

    /* consumer_cancel_notify: tell us when a queue we consume is deleted */
    amqp_table_entry_t caps[5];
    const char *capnames[] = {"consumer_cancel_notify", "publisher_confirms", "basic.nack", "connection.blocked",
                              "authentication_failure_close"};
    for (int i = 0; i < 5; i++) {
        caps[i].key = amqp_cstring_bytes(capnames[i]);
        caps[i].value.kind = AMQP_FIELD_KIND_BOOLEAN;
        caps[i].value.value.boolean = 1;
    }
    char cname[64];
    snprintf(cname, sizeof cname, "gust pid %d", (int)getpid());
    amqp_table_entry_t props[3];
    props[0].key = amqp_cstring_bytes("product");
    props[0].value.kind = AMQP_FIELD_KIND_UTF8;
    props[0].value.value.bytes = amqp_cstring_bytes("gust");
    props[1].key = amqp_cstring_bytes("connection_name");
    props[1].value.kind = AMQP_FIELD_KIND_UTF8;
    props[1].value.value.bytes = amqp_cstring_bytes(cname);
    props[2].key = amqp_cstring_bytes("capabilities");
    props[2].value.kind = AMQP_FIELD_KIND_TABLE;
    props[2].value.value.table.num_entries = 5;
    props[2].value.value.table.entries = caps;
    amqp_table_t ptable = {3, props};

    amqp_rpc_reply_t r = amqp_login_with_properties(conn, c->vhost, 0, FRAME_MAX, c->heartbeat, &ptable,
                                                    AMQP_SASL_METHOD_PLAIN, c->user, c->pass);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        describe_login_error(c, r, err, errlen);
        goto fail;
    }
    for (amqp_channel_t ch = CH_PUB; ch <= CH_ADM; ch++) {
        amqp_channel_open(conn, ch);
        r = amqp_get_rpc_reply(conn);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            int code;
            char text[512];
            snprintf(err, errlen, "RabbitMQ at %s: cannot open a channel: %s", c->where,
                     server_reason(r, &code, text, sizeof text));
            goto fail;
        }
    }
    amqp_confirm_select(conn, CH_PUB);
    r = amqp_get_rpc_reply(conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        int code;
        char text[512];
        snprintf(err, errlen, "RabbitMQ at %s: publisher confirms refused: %s", c->where,
                 server_reason(r, &code, text, sizeof text));
        goto fail;
    }
    if (declare_exchange(conn, c, RMQ_EXCHANGE, "direct", err, errlen) != 0) goto fail;
    if (declare_exchange(conn, c, RMQ_DLX, "fanout", err, errlen) != 0) goto fail;
    amqp_queue_declare(conn, CH_ADM, amqp_cstring_bytes(RMQ_DEAD), 0, 1, 0, 0, amqp_empty_table);
    r = amqp_get_rpc_reply(conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
        amqp_queue_bind(conn, CH_ADM, amqp_cstring_bytes(RMQ_DEAD), amqp_cstring_bytes(RMQ_DLX),
                        amqp_cstring_bytes(""), amqp_empty_table);
        r = amqp_get_rpc_reply(conn);
    }
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        int rc = rmq_rpc_failed(conn, c, CH_ADM, r, "cannot declare the dead-letter queue '" RMQ_DEAD "'", err, errlen);
        if (rc < 0) goto fail;
        log_warn("broker", "%s (dead letters may be lost)", err); /* it exists otherwise: go on */
    }
    amqp_maybe_release_buffers(conn);
    return conn;
fail:
    amqp_destroy_connection(conn);
    return NULL;
}
