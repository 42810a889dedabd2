/* rabbitmq_io — the I/O thread that owns a Broker's connection (rabbitmq.c says why there
 * is one). Each turn of its loop makes a pass over what the callers asked for (declare,
 * consumers and prefetch, acks, the publish batch), then sleeps in poll() on the socket and
 * the eventfd and hands every frame that arrived to the publish or consume side.
 *
 * Resilience (invariant 7): when the connection drops (socket error, heartbeat timeout,
 * connection.close from the server), the I/O thread reconnects with a backoff of 100 ms
 * doubling to 5 s, declares the topology and the queues again, and resumes consuming and
 * publishing. publish waits up to publish_timeout for a connection and the confirms, then
 * returns an error (the outbox keeps the rows). */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "broker-adapters/rabbitmq_int.h"
#include "core/log.h"
#include "core/util.h"

/* A new connection is up (mu held, or before the I/O thread starts). */
void rmq_on_connected(RmqBroker *b, amqp_connection_state_t conn)
{
    b->conn = conn;
    b->connected = 1;
    b->gen++;
    b->epoch++;
    b->pub_seq = 0;
    b->qos_applied = -1;
    b->last_rx = rmq_now_ms();
    b->backoff_ms = BACKOFF_MIN_MS;
    b->conn_err[0] = '\0';
    for (RmqQueue *q = b->queues; q; q = q->next) {
        q->failed = 0;
        if (q->known || q->consume) q->need_declare = 1;
    }
    if (b->lost) log_info("broker", "RabbitMQ at %s: reconnected", b->cfg.where);
    b->lost = 0;
    pthread_cond_broadcast(&b->cv);
}

void rmq_assembly_reset(Assembly *a)
{
    a->active = 0;
    a->size = a->got = 0;
    a->too_big = 0;
}

/* The connection is gone (mu held). */
static void connection_lost(RmqBroker *b, const char *why)
{
    if (!b->closing) log_warn("broker", "RabbitMQ at %s: connection lost: %s; reconnecting", b->cfg.where, why);
    snprintf(b->conn_err, sizeof b->conn_err, "connection lost: %s", why);
    amqp_connection_state_t c = b->conn;
    b->conn = NULL;
    b->connected = 0;
    b->lost = 1;
    pthread_mutex_unlock(&b->mu);
    amqp_destroy_connection(c); /* closes the socket: the broker requeues our unacked messages */
    pthread_mutex_lock(&b->mu);
    b->epoch++;
    rmq_buffer_clear(b);
    b->n_held = 0;
    b->n_requeue = 0;
    b->n_acks = 0;
    if (b->op_pending) {
        b->op_pending = 0;
        b->op_rc = -1;
        b->op_done_id = b->op_id;
        snprintf(b->op_err, sizeof b->op_err, "RabbitMQ at %s: connection lost before the ack was sent: the "
                 "broker requeues the message", b->cfg.where);
    }
    if (b->pub_active) {
        char w[512];
        snprintf(w, sizeof w, "RabbitMQ at %s: connection lost before the broker confirmed", b->cfg.where);
        for (size_t i = 0; i < b->n_pub; i++)
            if (b->pub[i].state == PUB_SENT) rmq_pub_fail(b, &b->pub[i], w);
        rmq_pub_finish_if_done(b);
    }
    rmq_assembly_reset(&b->as_pub);
    rmq_assembly_reset(&b->as_con);
    b->qos_applied = -1;
    b->backoff_ms = BACKOFF_MIN_MS;
    b->next_attempt = rmq_now_ms() + b->backoff_ms;
    pthread_cond_broadcast(&b->cv);
}

/* Declare q on the current connection (mu held; released around the RPC). -1: connection lost. */
int rmq_declare_locked(RmqBroker *b, RmqQueue *q)
{
    char name[128], err[512];
    util_strlcpy(name, q->name, sizeof name);
    pthread_mutex_unlock(&b->mu);
    int rc = rmq_declare_queue(b->conn, &b->cfg, name, err, sizeof err);
    pthread_mutex_lock(&b->mu);
    if (rc == 0) {
        q->declared_gen = b->gen;
        q->known = 1;
        q->failed = 0;
        q->err[0] = '\0';
        b->last_rx = rmq_now_ms();
    } else if (rc > 0) {
        q->failed = 1;
        q->failed_batch = b->pub_batch;
        util_strlcpy(q->err, err, sizeof q->err);
        log_warn("broker", "%s", err);
    } else {
        q->need_declare = 1; /* again once reconnected */
        util_strlcpy(b->io_err, err, sizeof b->io_err);
    }
    return rc < 0 ? -1 : 0;
}

/* One pass over what the callers asked for (mu held). -1: connection lost. */
static int reconcile(RmqBroker *b)
{
    b->retry_soon = 0;
    for (RmqQueue *q = b->queues; q; q = q->next) {
        if (!q->need_declare) continue;
        q->need_declare = 0;
        if (rmq_declare_locked(b, q) < 0) return -1;
    }
    if (rmq_consume_reconcile(b) < 0) return -1;
    if (rmq_consume_send_acks(b) < 0) return -1;
    if (b->pub_active && rmq_publish_unsent(b) < 0) return -1;
    return 0;
}

static void assembly_start(Assembly *a, uint64_t dtag, amqp_bytes_t ctag, amqp_bytes_t rkey)
{
    a->active = 1;
    a->dtag = dtag;
    rmq_bytes_str(ctag, a->ctag, sizeof a->ctag);
    rmq_bytes_str(rkey, a->rkey, sizeof a->rkey);
    a->size = a->got = 0;
    a->too_big = 0;
}

/* One frame (mu not held). -1: connection lost. */
static int handle_frame(RmqBroker *b, amqp_frame_t *f)
{
    amqp_connection_state_t conn = b->conn;
    if (f->frame_type == AMQP_FRAME_METHOD) {
        amqp_method_t *m = &f->payload.method;
        switch (m->id) {
        case AMQP_CONNECTION_CLOSE_METHOD: {
            amqp_connection_close_t *c = m->decoded;
            char text[400];
            rmq_bytes_str(c->reply_text, text, sizeof text);
            rmq_send_close_ok(conn, 0, 1);
            snprintf(b->io_err, sizeof b->io_err, "closed by the server: %s", text);
            return -1;
        }
        case AMQP_CONNECTION_BLOCKED_METHOD: {
            amqp_connection_blocked_t *c = m->decoded;
            char text[200];
            log_warn("broker", "RabbitMQ at %s: publishing blocked by the server: %s", b->cfg.where,
                     rmq_bytes_str(c->reason, text, sizeof text));
            return 0;
        }
        case AMQP_CONNECTION_UNBLOCKED_METHOD:
            log_info("broker", "RabbitMQ at %s: publishing unblocked", b->cfg.where);
            return 0;
        case AMQP_CHANNEL_CLOSE_METHOD: {
            amqp_channel_close_t *c = m->decoded;
            char text[400], why[1024];
            rmq_bytes_str(c->reply_text, text, sizeof text);
            snprintf(why, sizeof why, "RabbitMQ at %s: channel %d closed by the server: %s", b->cfg.where,
                     (int)f->channel, text);
            log_warn("broker", "%s", why);
            rmq_send_close_ok(conn, f->channel, 0);
            amqp_maybe_release_buffers_on_channel(conn, f->channel);
            amqp_channel_open(conn, f->channel);
            if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL) {
                snprintf(b->io_err, sizeof b->io_err, "cannot reopen channel %d", (int)f->channel);
                return -1;
            }
            if (f->channel == CH_PUB) {
                amqp_confirm_select(conn, CH_PUB);
                if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL) {
                    snprintf(b->io_err, sizeof b->io_err, "cannot select confirms again");
                    return -1;
                }
            }
            pthread_mutex_lock(&b->mu);
            if (f->channel == CH_PUB) rmq_publish_channel_reset(b, why);
            if (f->channel == CH_CON) rmq_consume_channel_reset(b);
            b->retry_soon = 1;
            pthread_mutex_unlock(&b->mu);
            return 0;
        }
        case AMQP_BASIC_ACK_METHOD:
            if (f->channel == CH_PUB) {
                amqp_basic_ack_t *a = m->decoded;
                rmq_confirm(b, a->delivery_tag, a->multiple, 1);
            }
            return 0;
        case AMQP_BASIC_NACK_METHOD:
            if (f->channel == CH_PUB) {
                amqp_basic_nack_t *a = m->decoded;
                rmq_confirm(b, a->delivery_tag, a->multiple, 0);
            }
            return 0;
        case AMQP_BASIC_RETURN_METHOD: {
            amqp_basic_return_t *r = m->decoded;
            assembly_start(&b->as_pub, 0, amqp_empty_bytes, r->routing_key);
            return 0;
        }
        case AMQP_BASIC_DELIVER_METHOD: {
            amqp_basic_deliver_t *d = m->decoded;
            assembly_start(&b->as_con, d->delivery_tag, d->consumer_tag, d->routing_key);
            return 0;
        }
        case AMQP_BASIC_CANCEL_METHOD: { /* the server cancelled a consumer: its queue was deleted */
            amqp_basic_cancel_t *c = m->decoded;
            char ctag[256];
            rmq_bytes_str(c->consumer_tag, ctag, sizeof ctag);
            pthread_mutex_lock(&b->mu);
            RmqQueue *q = rmq_queue_by_ctag(b, ctag);
            if (q) {
                log_warn("broker", "queue=%s: consumer cancelled by RabbitMQ at %s (queue deleted?): declaring it "
                         "and consuming again", q->name, b->cfg.where);
                q->ctag_epoch = 0;
                q->declared_gen = 0;
                q->failed = 0;
                q->need_declare = 1;
                b->retry_soon = 1;
            }
            pthread_mutex_unlock(&b->mu);
            if (!c->nowait) {
                amqp_basic_cancel_ok_t ok;
                ok.consumer_tag = c->consumer_tag;
                amqp_send_method(conn, CH_CON, AMQP_BASIC_CANCEL_OK_METHOD, &ok);
            }
            return 0;
        }
        default:
            return 0; /* late RPC replies and the like */
        }
    }
    Assembly *a = f->channel == CH_PUB ? &b->as_pub : f->channel == CH_CON ? &b->as_con : NULL;
    if (!a || !a->active) return 0;
    if (f->frame_type == AMQP_FRAME_HEADER) {
        a->size = f->payload.properties.body_size;
        a->too_big = a->size > BODY_MAX;
    } else if (f->frame_type == AMQP_FRAME_BODY) {
        amqp_bytes_t by = f->payload.body_fragment;
        if (a->got < BODY_MAX) {
            size_t room = BODY_MAX - (size_t)a->got, n = by.len < room ? by.len : room;
            memcpy(a->body + a->got, by.bytes, n);
        }
        a->got += by.len;
    } else {
        return 0;
    }
    if (a->got >= a->size) {
        if (a == &b->as_con) return rmq_delivery_complete(b);
        rmq_return_complete(b);
    }
    return 0;
}

/* Read every frame that is there, without waiting (mu not held). -1: connection lost. */
static int io_read(RmqBroker *b)
{
    for (int i = 0; i < 4096; i++) {
        amqp_frame_t f;
        struct timeval tv0 = {0, 0};
        int rc = amqp_simple_wait_frame_noblock(b->conn, &f, &tv0);
        if (rc == AMQP_STATUS_TIMEOUT) return 0;
        if (rc != AMQP_STATUS_OK) {
            snprintf(b->io_err, sizeof b->io_err, "%s", amqp_error_string2(rc));
            rmq_lower_first(b->io_err);
            return -1;
        }
        b->last_rx = rmq_now_ms();
        rc = handle_frame(b, &f);
        amqp_maybe_release_buffers_on_channel(b->conn, f.channel);
        if (rc < 0) return -1;
    }
    return 0;
}

static void drain_wake(RmqBroker *b)
{
    uint64_t v;
    if (read(b->wake_fd, &v, sizeof v) < 0) { /* EAGAIN: nothing to drain */ }
}

void *rmq_io_main(void *arg)
{
    RmqBroker *b = arg;
    pthread_mutex_lock(&b->mu);
    while (!b->closing) {
        if (!b->conn) {
            if (b->op_pending) { /* nothing to ack on: the broker requeued those messages */
                b->op_pending = 0;
                b->op_rc = -1;
                b->op_done_id = b->op_id;
                snprintf(b->op_err, sizeof b->op_err, "RabbitMQ at %s: not connected: the broker requeues the "
                         "message", b->cfg.where);
                pthread_cond_broadcast(&b->cv);
            }
            int64_t now = rmq_now_ms();
            if (now >= b->next_attempt) {
                char err[512];
                pthread_mutex_unlock(&b->mu);
                amqp_connection_state_t c = rmq_open(&b->cfg, err, sizeof err);
                pthread_mutex_lock(&b->mu);
                if (c) {
                    if (b->closing) {
                        pthread_mutex_unlock(&b->mu);
                        amqp_destroy_connection(c);
                        pthread_mutex_lock(&b->mu);
                        break;
                    }
                    rmq_on_connected(b, c);
                    continue;
                }
                if (strcmp(err, b->conn_err) != 0) log_warn("broker", "%s (retrying)", err);
                util_strlcpy(b->conn_err, err, sizeof b->conn_err);
                b->next_attempt = rmq_now_ms() + b->backoff_ms;
                b->backoff_ms = b->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : b->backoff_ms * 2;
            }
            rmq_pub_check_deadline(b);
            int64_t wait = b->next_attempt - rmq_now_ms();
            if (b->pub_active && b->pub_deadline - rmq_now_ms() < wait) wait = b->pub_deadline - rmq_now_ms();
            if (wait < 0) wait = 0;
            struct pollfd pfd = {b->wake_fd, POLLIN, 0};
            pthread_mutex_unlock(&b->mu);
            poll(&pfd, 1, (int)wait);
            drain_wake(b);
            pthread_mutex_lock(&b->mu);
            continue;
        }
        uint64_t seen = b->req;
        if (reconcile(b) < 0) {
            connection_lost(b, b->io_err);
            continue;
        }
        if (b->done < seen) {
            b->done = seen;
            pthread_cond_broadcast(&b->cv);
        }
        rmq_pub_check_deadline(b);
        int64_t now = rmq_now_ms();
        int64_t wait = 1000;
        if (b->cfg.heartbeat > 0 && b->cfg.heartbeat * 500 < wait) wait = b->cfg.heartbeat * 500;
        if (b->pub_active && b->pub_deadline - now < wait) wait = b->pub_deadline - now;
        if (b->retry_soon && wait > 100) wait = 100;
        if (amqp_frames_enqueued(b->conn) || amqp_data_in_buffer(b->conn)) wait = 0;
        if (wait < 0) wait = 0;
        struct pollfd pfd[2] = {{amqp_get_sockfd(b->conn), POLLIN, 0}, {b->wake_fd, POLLIN, 0}};
        pthread_mutex_unlock(&b->mu);
        int pr = poll(pfd, 2, (int)wait);
        if (pr > 0 && pfd[1].revents) drain_wake(b);
        if (pr > 0 && pfd[0].revents) b->last_rx = rmq_now_ms();
        int rc = io_read(b); /* also sends our heartbeat when it is due */
        pthread_mutex_lock(&b->mu);
        if (rc < 0) {
            connection_lost(b, b->io_err);
            continue;
        }
        if (b->cfg.heartbeat > 0 && rmq_now_ms() - b->last_rx > (int64_t)b->cfg.heartbeat * 2000 + 500) {
            char why[128];
            snprintf(why, sizeof why, "no heartbeat from the server for %d s", b->cfg.heartbeat * 2);
            connection_lost(b, why);
        }
    }
    /* closing: send the acks asked for last, or the broker would requeue those messages */
    if (b->conn && b->n_acks && rmq_consume_send_queued_acks(b) < 0)
        log_warn("broker", "RabbitMQ at %s: closing: the last acks were not sent: %s", b->cfg.where, b->io_err);
    if (b->conn) {
        amqp_connection_state_t c = b->conn;
        b->conn = NULL;
        b->connected = 0;
        pthread_mutex_unlock(&b->mu);
        struct timeval tv = {1, 0};
        amqp_set_rpc_timeout(c, &tv);
        amqp_connection_close(c, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(c);
        pthread_mutex_lock(&b->mu);
    }
    if (b->pub_active) {
        for (size_t i = 0; i < b->n_pub; i++) rmq_pub_fail(b, &b->pub[i], "broker closed");
        rmq_pub_finish_if_done(b);
    }
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return NULL;
}
