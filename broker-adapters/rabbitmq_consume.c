/* rabbitmq_consume — consumers, prefetch, deliveries, ack / reject / requeue.
 *
 * DESIGN.md invariant 4: basic.qos prefetch_count = prefetch, global (one limit for all the
 * consumed queues of the channel) on classic queues; quorum queues only support
 * per-consumer limits, so there each consumed queue gets the limit and a change re-creates
 * the consumers. set_prefetch(0) cancels the consumers and gives back (reject, requeue) what
 * was delivered but not returned by next() and whatever arrives after the cancel.
 * Delivery tags returned by next() carry the consume channel's incarnation in their top 16
 * bits: acking a tag of a connection that has since been lost fails cleanly (the broker
 * requeued that message) instead of closing the new channel. A consumer cancelled by the
 * server (its queue was deleted) is declared and consumed again.
 *
 * A worker slot cancels and re-creates its consumer and acks once per task, so none of that
 * waits: set_prefetch and ack leave the request for the I/O thread and return, the cancel
 * and the re-created consumer go out with no-wait, and the I/O thread sends a cancel before
 * the ack asked for after it. reject() still waits for the send. */
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "broker-adapters/rabbitmq_int.h"
#include "core/log.h"
#include "core/util.h"

/* ---- on the I/O thread --------------------------------------------------------------- */

RmqQueue *rmq_queue_by_ctag(RmqBroker *b, const char *ctag)
{
    for (RmqQueue *q = b->queues; q; q = q->next)
        if (q->ctag_epoch == b->epoch && strcmp(q->ctag, ctag) == 0) return q;
    return NULL;
}

static void push_tag(uint64_t **arr, size_t *n, size_t *cap, uint64_t tag)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *arr = xrealloc(*arr, *cap * sizeof **arr);
    }
    (*arr)[(*n)++] = tag;
}

static int held_remove(RmqBroker *b, uint64_t tag)
{
    for (size_t i = 0; i < b->n_held; i++) {
        if (b->held[i] == tag) {
            b->held[i] = b->held[--b->n_held];
            return 1;
        }
    }
    return 0;
}

void rmq_buffer_clear(RmqBroker *b)
{
    for (Delivery *d = b->buf_head, *nx; d; d = nx) {
        nx = d->next;
        free(d);
    }
    b->buf_head = b->buf_tail = NULL;
}

/* The consume channel was closed by the server (mu held): everything on it is gone. */
int rmq_consume_channel_reset(RmqBroker *b)
{
    b->epoch++;
    rmq_buffer_clear(b);
    b->n_held = 0;
    b->n_requeue = 0;
    b->n_acks = 0;
    b->qos_applied = -1;
    rmq_assembly_reset(&b->as_con);
    return 0;
}

/* A consume-channel RPC failed (mu held). -1: connection lost. */
static int consume_rpc_failed(RmqBroker *b, amqp_rpc_reply_t r, const char *what)
{
    char err[512];
    pthread_mutex_unlock(&b->mu);
    int rc = rmq_rpc_failed(b->conn, &b->cfg, CH_CON, r, what, err, sizeof err);
    pthread_mutex_lock(&b->mu);
    if (rc < 0) {
        util_strlcpy(b->io_err, err, sizeof b->io_err);
        return -1;
    }
    log_warn("broker", "%s", err);
    rmq_consume_channel_reset(b);
    b->retry_soon = 1;
    return 0;
}

/* Cancel q's consumer with no-wait: a worker slot does this before every task (invariant 4),
 * and waiting for the cancel-ok cost a round trip per message. Nothing needs the answer: the
 * server handles the channel's frames in order, so an ack sent after the cancel cannot free
 * the prefetch for this consumer, and a delivery that was already on its way carries a tag
 * that no queue has any more, so delivery_complete gives it back (reject, requeue). The
 * server answers no-wait cancels of unknown tags with nothing either. -1: connection lost. */
static int cancel_consumer(RmqBroker *b, RmqQueue *q)
{
    char ctag[256];
    util_strlcpy(ctag, q->ctag, sizeof ctag);
    q->ctag_epoch = 0;
    pthread_mutex_unlock(&b->mu);
    amqp_basic_cancel_t req = {.consumer_tag = amqp_cstring_bytes(ctag), .nowait = 1};
    int rc = amqp_send_method(b->conn, CH_CON, AMQP_BASIC_CANCEL_METHOD, &req);
    pthread_mutex_lock(&b->mu);
    if (rc != AMQP_STATUS_OK) {
        snprintf(b->io_err, sizeof b->io_err, "cannot cancel a consumer: %s", amqp_error_string2(rc));
        return -1;
    }
    return 0;
}

/* Bring the consumers in line with what the caller asked (mu held). -1: connection lost. */
int rmq_consume_reconcile(RmqBroker *b)
{
    int want = b->consuming && b->prefetch > 0;
    for (RmqQueue *q = b->queues; q; q = q->next) {
        if (q->ctag_epoch == b->epoch && (!want || !q->consume))
            if (cancel_consumer(b, q) < 0) return -1;
    }
    if (!want) return 0;
    int pf = b->prefetch > 65535 ? 65535 : b->prefetch;
    if (b->qos_applied != pf) {
        uint64_t epoch = b->epoch;
        if (b->cfg.quorum) /* per-consumer limits are fixed at basic.consume: re-create them */
            for (RmqQueue *q = b->queues; q; q = q->next)
                if (q->ctag_epoch == b->epoch && cancel_consumer(b, q) < 0) return -1;
        if (b->epoch != epoch) return 0; /* the channel was reset: next pass */
        pthread_mutex_unlock(&b->mu);
        amqp_basic_qos(b->conn, CH_CON, 0, (uint16_t)pf, b->cfg.quorum ? 0 : 1);
        amqp_rpc_reply_t r = amqp_get_rpc_reply(b->conn);
        pthread_mutex_lock(&b->mu);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) return consume_rpc_failed(b, r, "cannot set the prefetch");
        amqp_maybe_release_buffers_on_channel(b->conn, CH_CON);
        if (b->epoch != epoch) return 0;
        b->qos_applied = pf;
    }
    for (RmqQueue *q = b->queues; q; q = q->next) {
        if (!q->consume || q->ctag_epoch == b->epoch) continue;
        if (q->declared_gen != b->gen) {
            if (q->failed) continue; /* refused: consume() reported it; asked again by the next consume() */
            if (rmq_declare_locked(b, q) < 0) return -1;
            if (q->declared_gen != b->gen) continue;
        }
        char name[128];
        util_strlcpy(name, q->name, sizeof name);
        uint64_t epoch = b->epoch;
        if (q->consumed_epoch == b->epoch) {
            /* Consumed before on this channel: a worker slot re-creates its consumer after every
             * task, and waiting for consume-ok cost a round trip each time. With no-wait we name
             * the consumer ourselves. Should the server refuse it after all (the queue was
             * deleted meanwhile), it closes the channel: the channel is reset, and the next
             * pass consumes with a wait again, which handles the refusal as below. */
            char ctag[64];
            snprintf(ctag, sizeof ctag, "gust-%llu", (unsigned long long)++b->ctag_seq);
            pthread_mutex_unlock(&b->mu);
            amqp_basic_consume_t req = {.queue = amqp_cstring_bytes(name),
                                        .consumer_tag = amqp_cstring_bytes(ctag),
                                        .nowait = 1,
                                        .arguments = amqp_empty_table};
            int rc = amqp_send_method(b->conn, CH_CON, AMQP_BASIC_CONSUME_METHOD, &req);
            pthread_mutex_lock(&b->mu);
            if (rc != AMQP_STATUS_OK) {
                snprintf(b->io_err, sizeof b->io_err, "cannot consume queue '%s': %s", name, amqp_error_string2(rc));
                return -1;
            }
            if (b->epoch != epoch) continue;
            util_strlcpy(q->ctag, ctag, sizeof q->ctag);
            q->ctag_epoch = b->epoch;
            continue;
        }
        pthread_mutex_unlock(&b->mu);
        amqp_basic_consume_ok_t *ok = amqp_basic_consume(b->conn, CH_CON, amqp_cstring_bytes(name), amqp_empty_bytes,
                                                         0, 0, 0, amqp_empty_table);
        amqp_rpc_reply_t r = amqp_get_rpc_reply(b->conn);
        char ctag[256] = "";
        if (ok) rmq_bytes_str(ok->consumer_tag, ctag, sizeof ctag);
        pthread_mutex_lock(&b->mu);
        if (r.reply_type != AMQP_RESPONSE_NORMAL || !ok) {
            char what[200];
            snprintf(what, sizeof what, "cannot consume queue '%s'", name);
            int code = 0;
            if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD)
                code = ((amqp_channel_close_t *)r.reply.decoded)->reply_code;
            if (code == AMQP_NOT_FOUND) {
                q->declared_gen = 0; /* deleted meanwhile: declare it again on the next pass */
            } else if (code) { /* refused (exclusive consumer, permissions): report, do not retry */
                q->failed = 1;
                int64_t len = snprintf(q->err, sizeof q->err, "RabbitMQ at %s: %s: ", b->cfg.where, what);
                char text[400];
                rmq_bytes_str(((amqp_channel_close_t *)r.reply.decoded)->reply_text, text, sizeof text);
                if (len > 0 && (size_t)len < sizeof q->err)
                    util_strlcpy(q->err + len, text, sizeof q->err - (size_t)len);
            }
            return consume_rpc_failed(b, r, what);
        }
        amqp_maybe_release_buffers_on_channel(b->conn, CH_CON);
        b->last_rx = rmq_now_ms();
        if (b->epoch != epoch) continue;
        util_strlcpy(q->ctag, ctag, sizeof q->ctag);
        q->ctag_epoch = b->epoch;
        q->consumed_epoch = b->epoch;
    }
    return 0;
}

/* Send the acks ack() queued (mu held; released around each send). -1: connection lost. */
int rmq_consume_send_queued_acks(RmqBroker *b)
{
    while (b->n_acks) {
        uint64_t t = b->acks[--b->n_acks];
        if ((t >> TAG_SHIFT) != (b->epoch & 0xffff)) continue; /* requeued by the broker */
        pthread_mutex_unlock(&b->mu);
        int rc = amqp_basic_ack(b->conn, CH_CON, t & TAG_MASK, 0);
        pthread_mutex_lock(&b->mu);
        if (rc != AMQP_STATUS_OK) {
            snprintf(b->io_err, sizeof b->io_err, "%s", amqp_error_string2(rc));
            return -1;
        }
    }
    return 0;
}

/* Send what the callers asked for on the consume channel (mu held; released around each
 * send): the cancels of a set_prefetch(0) that came in late, the requeues of set_prefetch(0),
 * the acks, then the reject a caller waits for. -1: connection lost. */
int rmq_consume_send_acks(RmqBroker *b)
{
    /* set_prefetch does not wait for a pass: when set_prefetch(0) came in after this pass had
     * reconciled the consumers (mu is released around every send), cancel them now. A reject
     * or an ack sent before the cancel would free the prefetch for one more delivery to a
     * consumer that has stopped taking work (it would come back here, to be requeued). */
    for (;;) {
        int want = b->consuming && b->prefetch > 0, due = 0;
        for (RmqQueue *q = b->queues; q && !due; q = q->next)
            due = q->ctag_epoch == b->epoch && (!want || !q->consume);
        if (!due) break;
        if (rmq_consume_reconcile(b) < 0) return -1;
    }
    while (b->n_requeue) {
        uint64_t t = b->requeue[--b->n_requeue];
        if ((t >> TAG_SHIFT) != (b->epoch & 0xffff)) continue;
        pthread_mutex_unlock(&b->mu);
        int rc = amqp_basic_reject(b->conn, CH_CON, t & TAG_MASK, 1);
        pthread_mutex_lock(&b->mu);
        if (rc != AMQP_STATUS_OK) {
            snprintf(b->io_err, sizeof b->io_err, "%s", amqp_error_string2(rc));
            return -1;
        }
    }
    if (rmq_consume_send_queued_acks(b) < 0) return -1;
    if (b->op_pending) {
        uint64_t t = b->op_tag, id = b->op_id;
        int ack = b->op_ack, requeue = b->op_requeue;
        b->op_pending = 0;
        int rc = 0;
        if ((t >> TAG_SHIFT) != (b->epoch & 0xffff)) {
            b->op_rc = -1;
            snprintf(b->op_err, sizeof b->op_err, "RabbitMQ at %s: delivery tag %llu is from a channel that has "
                     "since closed: the broker has requeued that message", b->cfg.where,
                     (unsigned long long)(t & TAG_MASK));
        } else {
            pthread_mutex_unlock(&b->mu);
            rc = ack ? amqp_basic_ack(b->conn, CH_CON, t & TAG_MASK, 0)
                     : amqp_basic_reject(b->conn, CH_CON, t & TAG_MASK, requeue);
            pthread_mutex_lock(&b->mu);
            b->op_rc = rc == AMQP_STATUS_OK ? 0 : -1;
            if (rc != AMQP_STATUS_OK)
                snprintf(b->op_err, sizeof b->op_err, "RabbitMQ at %s: cannot send the %s: %s", b->cfg.where,
                         ack ? "ack" : "reject", amqp_error_string2(rc));
        }
        b->op_done_id = id;
        pthread_cond_broadcast(&b->cv);
        if (rc != AMQP_STATUS_OK) {
            snprintf(b->io_err, sizeof b->io_err, "%s", amqp_error_string2(rc));
            return -1;
        }
    }
    return 0;
}

/* Validate and decode a message body. 1 ok, 0 not ours (why says what is wrong). */
int rmq_decode_body(const char *body, size_t len, BrokerMsg *m, char *why, size_t whylen)
{
    memset(m, 0, sizeof *m);
    if (strlen(body) != len) {
        snprintf(why, whylen, "contains NUL bytes");
        return 0;
    }
    cJSON *j = cJSON_ParseWithOpts(body, NULL, 1);
    if (!j) {
        snprintf(why, whylen, "not JSON");
        return 0;
    }
    int ok = 0;
    const cJSON *ti = cJSON_GetObjectItemCaseSensitive(j, "ti_id");
    const cJSON *tn = cJSON_GetObjectItemCaseSensitive(j, "try_number");
    const cJSON *qu = cJSON_GetObjectItemCaseSensitive(j, "queue");
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(j, "priority");
    if (!cJSON_IsObject(j)) {
        snprintf(why, whylen, "not a JSON object");
    } else if (!cJSON_IsString(ti)) {
        snprintf(why, whylen, "ti_id %s", ti ? "is not a string" : "is missing");
    } else if (!ti->valuestring[0] || strlen(ti->valuestring) >= sizeof m->ti_id) {
        snprintf(why, whylen, "ti_id is not 1 to %zu characters long", sizeof m->ti_id - 1);
    } else if (!cJSON_IsNumber(tn)) {
        snprintf(why, whylen, "try_number %s", tn ? "is not a number" : "is missing");
    } else if (tn->valuedouble < 0 || tn->valuedouble > INT_MAX || tn->valuedouble != floor(tn->valuedouble)) {
        snprintf(why, whylen, "try_number is not a whole number >= 0");
    } else if (qu && (!cJSON_IsString(qu) || strlen(qu->valuestring) >= sizeof m->queue)) {
        snprintf(why, whylen, "queue is not a string of less than %zu characters", sizeof m->queue);
    } else if (pr && (!cJSON_IsNumber(pr) || pr->valuedouble < INT_MIN || pr->valuedouble > INT_MAX ||
                      pr->valuedouble != floor(pr->valuedouble))) {
        snprintf(why, whylen, "priority is not a whole number");
    } else {
        ok = 1;
        for (const char *s = ti->valuestring; *s; s++)
            if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) ok = 0;
        if (!ok) snprintf(why, whylen, "ti_id has spaces or non-printable characters");
    }
    if (ok) {
        util_strlcpy(m->ti_id, ti->valuestring, sizeof m->ti_id);
        m->try_number = (int)tn->valuedouble;
        if (qu) util_strlcpy(m->queue, qu->valuestring, sizeof m->queue);
        if (pr) m->priority = (int)pr->valuedouble;
    }
    cJSON_Delete(j);
    return ok;
}

/* A printable prefix of a message body for a log line. */
static void body_prefix(const char *body, size_t len, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 4 < outlen && i < 80; i++) {
        unsigned char c = (unsigned char)body[i];
        out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (len > 80 && o + 4 < outlen) { memcpy(out + o, "...", 3); o += 3; }
    out[o] = '\0';
}

/* A whole delivery arrived on the consume channel (mu not held). -1: connection lost. */
int rmq_delivery_complete(RmqBroker *b)
{
    Assembly *a = &b->as_con;
    a->active = 0;
    BrokerMsg m;
    char why[160];
    a->body[a->got < BODY_MAX ? a->got : BODY_MAX] = '\0';
    int ok = 0;
    if (a->too_big) snprintf(why, sizeof why, "body of %llu bytes is too large", (unsigned long long)a->size);
    else ok = rmq_decode_body(a->body, (size_t)a->got, &m, why, sizeof why);
    pthread_mutex_lock(&b->mu);
    RmqQueue *q = rmq_queue_by_ctag(b, a->ctag);
    char qname[128];
    util_strlcpy(qname, q ? q->name : a->rkey, sizeof qname);
    int keep = ok && b->consuming && b->prefetch > 0 && q && q->consume;
    if (keep) {
        Delivery *d = xcalloc(1, sizeof *d);
        d->msg = m;
        util_strlcpy(d->msg.queue, qname, sizeof d->msg.queue);
        d->msg.tag = ((b->epoch & 0xffff) << TAG_SHIFT) | (a->dtag & TAG_MASK);
        if (b->buf_tail) b->buf_tail->next = d;
        else b->buf_head = d;
        b->buf_tail = d;
        pthread_cond_broadcast(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
    if (keep) return 0;
    int rc;
    if (!ok) {
        char prefix[100];
        body_prefix(a->body, a->too_big ? BODY_MAX : (size_t)a->got, prefix, sizeof prefix);
        log_warn("broker", "queue=%s: undecodable message (%s) rejected to %s: %s", qname, why, RMQ_DEAD, prefix);
        rc = amqp_basic_reject(b->conn, CH_CON, a->dtag, 0);
    } else {
        rc = amqp_basic_reject(b->conn, CH_CON, a->dtag, 1); /* not taking work now: back to the queue */
    }
    if (rc != AMQP_STATUS_OK) {
        snprintf(b->io_err, sizeof b->io_err, "%s", amqp_error_string2(rc));
        return -1;
    }
    return 0;
}

/* ---- on the caller's thread ---------------------------------------------------------- */

int rmq_consume(Broker *br, const char *const *queues, size_t n, int prefetch)
{
    RmqBroker *b = (RmqBroker *)br;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(queues[i], "*") == 0) {
            snprintf(b->err, sizeof b->err, "the rabbitmq broker cannot consume '*': name the queues");
            return -1;
        }
        if (!queues[i][0] || strlen(queues[i]) >= sizeof b->queues->name) {
            snprintf(b->err, sizeof b->err, "queue name must be 1 to 127 characters");
            return -1;
        }
    }
    pthread_mutex_lock(&b->mu);
    for (RmqQueue *q = b->queues; q; q = q->next) q->consume = 0;
    for (size_t i = 0; i < n; i++) {
        RmqQueue *q = rmq_queue_get(b, queues[i]);
        q->consume = 1;
        q->failed = 0;
        if (q->declared_gen != b->gen) q->need_declare = 1;
    }
    b->consuming = 1;
    b->prefetch = prefetch < 0 ? 0 : prefetch;
    int rc = rmq_sync_pass(b, rmq_now_ms() + b->cfg.publish_timeout_ms);
    if (rc != 0) rmq_not_connected_error(b);
    for (size_t i = 0; i < n && rc == 0; i++) {
        RmqQueue *q = rmq_queue_find(b, queues[i]);
        if (q && q->failed) {
            util_strlcpy(b->err, q->err, sizeof b->err);
            rc = -1;
        }
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

int rmq_set_prefetch(Broker *br, int prefetch)
{
    RmqBroker *b = (RmqBroker *)br;
    pthread_mutex_lock(&b->mu);
    b->prefetch = prefetch < 0 ? 0 : prefetch;
    if (b->prefetch == 0) { /* give back what we hold but nobody took */
        for (Delivery *d = b->buf_head; d; d = d->next)
            push_tag(&b->requeue, &b->n_requeue, &b->cap_requeue, d->msg.tag);
        rmq_buffer_clear(b);
    }
    /* No wait for the I/O thread: a worker slot calls this twice per task, and each wait was
     * a sleep and a wake-up of both threads. What the caller relies on holds without it:
     * next() returns nothing buffered from before set_prefetch(0) (cleared above), and an
     * ack or reject asked for after it goes out after the cancel (rmq_consume_send_acks). */
    rmq_wake_io(b);
    pthread_mutex_unlock(&b->mu);
    return 0;
}

int rmq_next(Broker *br, int timeout_ms, BrokerMsg *out)
{
    RmqBroker *b = (RmqBroker *)br;
    int64_t deadline = rmq_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&b->mu);
    for (;;) {
        if (b->buf_head) {
            Delivery *d = b->buf_head;
            b->buf_head = d->next;
            if (!b->buf_head) b->buf_tail = NULL;
            *out = d->msg;
            free(d);
            push_tag(&b->held, &b->n_held, &b->cap_held, out->tag);
            pthread_mutex_unlock(&b->mu);
            return 1;
        }
        if (b->closing || rmq_now_ms() >= deadline) break;
        rmq_cv_wait_until(b, deadline);
    }
    pthread_mutex_unlock(&b->mu);
    return 0;
}

static int ack_or_reject(RmqBroker *b, uint64_t tag, int ack, int requeue)
{
    pthread_mutex_lock(&b->mu);
    if ((tag >> TAG_SHIFT) != (b->epoch & 0xffff)) {
        held_remove(b, tag);
        snprintf(b->err, sizeof b->err, "RabbitMQ at %s: delivery tag %llu is from a connection or channel that "
                 "has since closed: the broker has requeued that message", b->cfg.where,
                 (unsigned long long)(tag & TAG_MASK));
        pthread_mutex_unlock(&b->mu);
        return -1;
    }
    if (!held_remove(b, tag)) {
        snprintf(b->err, sizeof b->err, "unknown delivery tag %llu", (unsigned long long)(tag & TAG_MASK));
        pthread_mutex_unlock(&b->mu);
        return -1;
    }
    if (ack) {
        /* No wait for the I/O thread (a sleep and a wake-up of both threads per task): the ack
         * goes out in its next pass, after a cancel asked for before it. Should the
         * connection drop first, the broker requeues the message, and its claim, already
         * committed, makes the redelivery a no-op (invariant 2). */
        push_tag(&b->acks, &b->n_acks, &b->cap_acks, tag);
        rmq_wake_io(b);
        pthread_mutex_unlock(&b->mu);
        return 0;
    }
    b->op_tag = tag;
    b->op_ack = ack;
    b->op_requeue = requeue;
    b->op_rc = -1;
    uint64_t id = ++b->op_id;
    b->op_pending = 1;
    rmq_wake_io(b);
    int64_t deadline = rmq_now_ms() + OP_TIMEOUT_MS;
    while (b->op_done_id != id && !b->closing && rmq_now_ms() < deadline) rmq_cv_wait_until(b, deadline);
    int rc = b->op_done_id == id ? b->op_rc : -1;
    if (b->op_done_id != id) {
        b->op_pending = 0;
        snprintf(b->err, sizeof b->err, "RabbitMQ at %s: the %s was not sent within %d ms", b->cfg.where,
                 ack ? "ack" : "reject", OP_TIMEOUT_MS);
    } else if (rc != 0) {
        util_strlcpy(b->err, b->op_err, sizeof b->err);
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

int rmq_ack(Broker *br, uint64_t tag)
{
    return ack_or_reject((RmqBroker *)br, tag, 1, 0);
}

int rmq_reject(Broker *br, uint64_t tag, int requeue)
{
    return ack_or_reject((RmqBroker *)br, tag, 0, requeue);
}
