/* rabbitmq_publish — publish_batch with publisher confirms.
 *
 * publish_batch hands n messages to the I/O thread, which publishes them with mandatory=1
 * and collects basic.ack / basic.nack frames (honouring `multiple`; sequence numbers counted
 * from confirm.select; rabbitmq-c 0.11 has no amqp_publisher_confirm_wait). A message is
 * confirmed only by an ack that did not follow a basic.return (unroutable: its queue was
 * deleted — it is declared again); a nack, a return, a lost connection or the publish
 * timeout leave it unconfirmed, and the outbox publishes it again later. */
#include <stdio.h>
#include <string.h>

#include "broker-adapters/rabbitmq_int.h"
#include "core/log.h"
#include "core/util.h"

/* ---- on the I/O thread --------------------------------------------------------------- */

void rmq_pub_finish_if_done(RmqBroker *b)
{
    if (b->pub_active && b->pub_left == 0) {
        b->pub_active = 0;
        pthread_cond_broadcast(&b->cv);
    }
}

void rmq_pub_fail(RmqBroker *b, PubItem *it, const char *why)
{
    if (it->state == PUB_ACKED || it->state == PUB_FAILED) return;
    it->state = PUB_FAILED;
    b->pub_left--;
    if (!b->pub_err[0]) util_strlcpy(b->pub_err, why, sizeof b->pub_err);
}

int rmq_publish_channel_reset(RmqBroker *b, const char *why)
{
    b->pub_seq = 0;
    rmq_assembly_reset(&b->as_pub);
    if (b->pub_active) {
        for (size_t i = 0; i < b->n_pub; i++)
            if (b->pub[i].state == PUB_SENT) rmq_pub_fail(b, &b->pub[i], why);
        rmq_pub_finish_if_done(b);
    }
    return 0;
}

static size_t encode_body(const BrokerMsg *m, const char *queue, char *out, size_t outlen)
{
    StrBuf sb = {0};
    sb_append(&sb, "{\"ti_id\":\"");
    for (const char *s = m->ti_id; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') sb_printf(&sb, "\\%c", c);
        else if (c < 0x20) sb_printf(&sb, "\\u%04x", c);
        else sb_appendc(&sb, (char)c);
    }
    sb_printf(&sb, "\",\"try_number\":%d,\"queue\":\"", m->try_number);
    for (const char *s = queue; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') sb_printf(&sb, "\\%c", c);
        else if (c < 0x20) sb_printf(&sb, "\\u%04x", c);
        else sb_appendc(&sb, (char)c);
    }
    sb_printf(&sb, "\",\"priority\":%d}", m->priority);
    size_t n = util_strlcpy(out, sb_str(&sb), outlen);
    sb_free(&sb);
    return n < outlen ? n : outlen - 1;
}

/* Send what is unsent in the current batch (mu held). -1: connection lost. */
int rmq_publish_unsent(RmqBroker *b)
{
    for (size_t i = 0; i < b->n_pub && b->pub_active; i++) {
        PubItem *it = &b->pub[i];
        if (it->state != PUB_UNSENT) continue;
        const char *qname = it->msg.queue[0] ? it->msg.queue : "default";
        RmqQueue *q = rmq_queue_get(b, qname);
        if (q->declared_gen != b->gen) {
            if (!(q->failed && q->failed_batch == b->pub_batch))
                if (rmq_declare_locked(b, q) < 0) return -1;
            if (q->declared_gen != b->gen) {
                rmq_pub_fail(b, it, q->err[0] ? q->err : "queue not declared");
                continue;
            }
        }
        char body[2048];
        size_t blen = encode_body(&it->msg, qname, body, sizeof body);
        amqp_basic_properties_t props;
        memset(&props, 0, sizeof props);
        props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_PRIORITY_FLAG;
        props.content_type = amqp_cstring_bytes("application/json");
        props.delivery_mode = 2;
        props.priority = (uint8_t)broker_priority_level(it->msg.priority);
        amqp_bytes_t bb = {blen, body};
        char name[128];
        util_strlcpy(name, qname, sizeof name);
        pthread_mutex_unlock(&b->mu);
        int rc = amqp_basic_publish(b->conn, CH_PUB, amqp_cstring_bytes(RMQ_EXCHANGE), amqp_cstring_bytes(name), 1, 0,
                                    &props, bb);
        pthread_mutex_lock(&b->mu);
        if (rc != AMQP_STATUS_OK) {
            snprintf(b->io_err, sizeof b->io_err, "%s", amqp_error_string2(rc));
            rmq_lower_first(b->io_err);
            return -1;
        }
        it->seq = ++b->pub_seq;
        it->state = PUB_SENT;
    }
    rmq_pub_finish_if_done(b);
    return 0;
}

/* A basic.return arrived whole: that message was unroutable (its queue is gone). */
void rmq_return_complete(RmqBroker *b)
{
    Assembly *a = &b->as_pub;
    a->active = 0;
    BrokerMsg m;
    char why[160];
    a->body[a->got < BODY_MAX ? a->got : BODY_MAX] = '\0';
    int ok = !a->too_big && rmq_decode_body(a->body, (size_t)a->got, &m, why, sizeof why);
    pthread_mutex_lock(&b->mu);
    RmqQueue *q = rmq_queue_find(b, a->rkey);
    if (q) q->declared_gen = 0; /* declare it again before the next publish */
    if (ok && b->pub_active) {
        for (size_t i = 0; i < b->n_pub; i++) {
            PubItem *it = &b->pub[i];
            if (it->state == PUB_SENT && !it->returned && it->msg.try_number == m.try_number &&
                strcmp(it->msg.ti_id, m.ti_id) == 0) {
                it->returned = 1;
                break;
            }
        }
    }
    snprintf(b->pub_err, sizeof b->pub_err, "RabbitMQ at %s: message returned as unroutable: queue '%s' does not "
             "exist (declared again for the next attempt)", b->cfg.where, a->rkey);
    pthread_mutex_unlock(&b->mu);
    log_warn("broker", "queue=%s ti=%s try=%d: RabbitMQ returned the message (no such queue): left unconfirmed",
             a->rkey, ok ? m.ti_id : "?", ok ? m.try_number : 0);
}

void rmq_confirm(RmqBroker *b, uint64_t tag, int multiple, int ack)
{
    pthread_mutex_lock(&b->mu);
    if (b->pub_active) {
        char w[512];
        snprintf(w, sizeof w, "RabbitMQ at %s: the broker refused the message (basic.nack)", b->cfg.where);
        for (size_t i = 0; i < b->n_pub; i++) {
            PubItem *it = &b->pub[i];
            if (it->state != PUB_SENT || !(multiple ? it->seq <= tag : it->seq == tag)) continue;
            if (ack && !it->returned) {
                it->state = PUB_ACKED;
                b->pub_left--;
            } else {
                rmq_pub_fail(b, it, ack ? b->pub_err : w);
            }
        }
        rmq_pub_finish_if_done(b);
    }
    pthread_mutex_unlock(&b->mu);
}

/* Fail a batch whose time is up (mu held). */
void rmq_pub_check_deadline(RmqBroker *b)
{
    if (!b->pub_active || rmq_now_ms() < b->pub_deadline) return;
    char w[1024];
    if (b->connected)
        snprintf(w, sizeof w, "RabbitMQ at %s: no confirm within %d ms", b->cfg.where, b->cfg.publish_timeout_ms);
    else
        snprintf(w, sizeof w, "RabbitMQ at %s is unreachable (%s)", b->cfg.where, b->conn_err);
    for (size_t i = 0; i < b->n_pub; i++) rmq_pub_fail(b, &b->pub[i], w);
    rmq_pub_finish_if_done(b);
}

/* ---- on the caller's thread ---------------------------------------------------------- */

int rmq_publish_batch(Broker *br, const BrokerMsg *msgs, size_t n, int *confirmed)
{
    RmqBroker *b = (RmqBroker *)br;
    for (size_t i = 0; i < n; i++) confirmed[i] = 0;
    if (n == 0) return 0;
    pthread_mutex_lock(&b->mu);
    int64_t deadline = rmq_now_ms() + b->cfg.publish_timeout_ms;
    while (b->pub_active && !b->closing && rmq_now_ms() < deadline) rmq_cv_wait_until(b, deadline);
    if (b->pub_active || b->closing) {
        snprintf(b->err, sizeof b->err, "RabbitMQ at %s: the previous publish has not finished", b->cfg.where);
        pthread_mutex_unlock(&b->mu);
        return -1;
    }
    if (n > b->cap_pub) {
        b->cap_pub = n;
        b->pub = xrealloc(b->pub, n * sizeof *b->pub);
    }
    for (size_t i = 0; i < n; i++) {
        b->pub[i].msg = msgs[i];
        b->pub[i].seq = 0;
        b->pub[i].state = PUB_UNSENT;
        b->pub[i].returned = 0;
    }
    b->n_pub = n;
    b->pub_left = n;
    b->pub_err[0] = '\0';
    b->pub_deadline = deadline;
    b->pub_batch++;
    b->pub_active = 1;
    rmq_wake_io(b);
    /* The I/O thread ends the batch at the deadline; while it is reconnecting it does not
     * touch the batch, so we end it ourselves; the grace covers a blocked socket write. */
    while (b->pub_active && !b->closing) {
        int64_t now = rmq_now_ms();
        if (now >= deadline && !b->connected) {
            rmq_pub_check_deadline(b);
            break;
        }
        if (now >= deadline + 2000) break;
        rmq_cv_wait_until(b, now < deadline ? deadline : deadline + 2000);
    }
    if (b->pub_active) {
        snprintf(b->err, sizeof b->err, "RabbitMQ at %s: publishing is stuck (socket blocked?)", b->cfg.where);
        pthread_mutex_unlock(&b->mu);
        return -1;
    }
    size_t ok = 0;
    for (size_t i = 0; i < n; i++)
        if (b->pub[i].state == PUB_ACKED) {
            confirmed[i] = 1;
            ok++;
        }
    int rc = 0;
    if (ok < n) {
        const char *why = b->pub_err[0] ? b->pub_err : "unknown reason";
        if (n == 1) util_strlcpy(b->err, why, sizeof b->err);
        else snprintf(b->err, sizeof b->err, "%zu of %zu messages not confirmed: %s", n - ok, n, why);
        rc = -1;
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

int rmq_publish(Broker *br, const BrokerMsg *m)
{
    int confirmed = 0;
    return rmq_publish_batch(br, m, 1, &confirmed);
}
