/* events — GET /api/v2/gust/events: Server-Sent Events of run and task-instance state
 * changes (see events.h).
 *
 * The source is the store's journal (store/journal.h), written in the same transaction as
 * every change, so what is streamed is exactly what happened, in the order each run and
 * instance went through it, whichever process (scheduler, worker, another API server) made
 * the change. One follower thread per process reads it with its own store connection —
 * woken by the store's change notifications, and polling every 100 ms besides — through a
 * JournalCursor, which waits up to 2 s for an id that another transaction holds but has
 * not committed yet (PostgreSQL), so that no committed row is ever skipped. It keeps the
 * recent events, already formatted, in a ring, and wakes the streams.
 *
 * A subscriber is a cursor into that ring: its stream callback copies what is there and
 * returns at once (0 when nothing is ready: the server suspends the connection until the
 * next api_stream_wake). A subscriber that falls a whole ring behind (a slow reader) gets
 * `event: overflow` and its stream ends; it reconnects with Last-Event-ID. A subscriber
 * that asks for events older than the ring holds (Last-Event-ID or ?after=) reads them from
 * the store first, a page per call, on its own pool thread's connection, then goes on from
 * the ring where the store read ended: nothing is sent twice and nothing is left out.
 *
 * Without Last-Event-ID or ?after=, a stream starts at the present: only new changes. */
#include "api/events.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/config.h"
#include "core/log.h"
#include "core/util.h"
#include "store/journal.h"
#include "store/store.h"

#define RING_CAP 4096              /* events kept in memory for the subscribers */
#define FOLLOW_BATCH 1000          /* journal rows read per follower step */
#define POLL_MS 100                /* the follower looks at least this often */
#define GAP_GRACE_US 2000000       /* how long a hole in the ids may hold back what follows */
#define TICK_US 1000000            /* streams are woken this often, for their keepalives */
#define CATCHUP_PAGE 500           /* journal rows a catching-up subscriber reads per call */
#define REFILL_BYTES 65536         /* at most this much is copied out of the ring per call */

typedef struct RingEv {
    int64_t id;
    char *dag_id, *run_id; /* for the subscribers' filters */
    char *text;            /* the whole SSE frame, "id: ...\n\n" */
    size_t len;
} RingEv;

/* Everything below is under mu, except the follower's own store and cursor. */
static struct {
    pthread_mutex_t mu;
    int users;               /* api_events_start calls not yet stopped */
    pthread_t thread;
    atomic_int stop;
    ApiContext *ctx;
    RingEv ring[RING_CAP];
    uint64_t head;           /* sequence number of the next event appended */
    uint64_t count;          /* events in the ring: sequence numbers [head - count, head) */
    int64_t cursor;          /* every journal id up to here is in the ring or was never there */
    int64_t evicted;         /* the newest id no longer in the ring (or the start cursor) */
    int ready;               /* cursor is known */
    char why_not_ready[256];
    int clients, max_clients;
    int64_t keepalive_us;
} ev = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ---- formatting --------------------------------------------------------------------------- */

static char *format_event(const StateEvent *e, size_t *len)
{
    cJSON *d = cJSON_CreateObject();
    api_add_str(d, "dag_id", e->dag_id);
    api_add_str(d, "run_id", e->run_id);
    if (e->kind == STATE_EVENT_TI) {
        api_add_str(d, "task_id", e->task_id);
        cJSON_AddNumberToObject(d, "map_index", e->map_index);
        cJSON_AddNumberToObject(d, "try_number", e->try_number);
    } else {
        cJSON_AddNullToObject(d, "task_id");
        cJSON_AddNullToObject(d, "map_index");
        cJSON_AddNullToObject(d, "try_number");
    }
    api_add_str(d, "state", e->state);
    api_add_time(d, "timestamp", e->ts);
    char *json = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    /* cJSON escapes control characters, so the data is one line, as SSE needs */
    char *text = xasprintf("id: %lld\nevent: %s\ndata: %s\n\n", (long long)e->id,
                           e->kind == STATE_EVENT_TI ? "task_instance" : "dag_run", json ? json : "{}");
    free(json);
    *len = strlen(text);
    return text;
}

/* ---- the follower -------------------------------------------------------------------------- */

/* Takes over the strings of r. */
static void ring_append_locked(RingEv *r)
{
    RingEv *slot = &ev.ring[ev.head % RING_CAP];
    if (ev.count == RING_CAP) {
        ev.evicted = slot->id;
        free(slot->dag_id), free(slot->run_id), free(slot->text);
    } else {
        ev.count++;
    }
    *slot = *r;
    ev.head++;
}

static void ring_clear_locked(void)
{
    for (uint64_t i = 0; i < ev.count; i++) {
        RingEv *slot = &ev.ring[(ev.head - 1 - i) % RING_CAP];
        free(slot->dag_id), free(slot->run_id), free(slot->text);
        memset(slot, 0, sizeof *slot);
    }
    ev.count = 0;
}

/* Where the follower starts: the end of the journal now. 0 ok, -1 (why_not_ready says). */
static int follower_begin(Store *s, JournalCursor *jc)
{
    int64_t last = 0;
    if (store_journal_last_id(s, &last) != 0) {
        pthread_mutex_lock(&ev.mu);
        snprintf(ev.why_not_ready, sizeof ev.why_not_ready, "cannot read the state_event journal: %s",
                 store_last_error(s));
        pthread_mutex_unlock(&ev.mu);
        return -1;
    }
    memset(jc, 0, sizeof *jc);
    jc->last_id = last;
    jc->grace_us = GAP_GRACE_US;
    pthread_mutex_lock(&ev.mu);
    ev.cursor = ev.evicted = last;
    ev.ready = 1;
    pthread_mutex_unlock(&ev.mu);
    return 0;
}

static Store *follower_open(char *err, size_t errlen)
{
    Store *s = store_open(ev.ctx->store_url, err, errlen);
    if (s && store_listen(s) != 0)
        log_msg(LOG_WARNING, "api", "events: cannot listen for store changes (%s): polling every %d ms",
                store_last_error(s), POLL_MS);
    return s;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static void *follower_main(void *arg)
{
    Store *s = arg; /* opened by api_events_start, or NULL when the store was not there */
    JournalCursor jc;
    memset(&jc, 0, sizeof jc);
    pthread_mutex_lock(&ev.mu);
    int ready = ev.ready;
    int64_t cursor = ev.cursor;
    pthread_mutex_unlock(&ev.mu);
    jc.last_id = cursor;
    jc.grace_us = GAP_GRACE_US;
    int64_t last_tick = mono_us(), last_complaint = 0, skipped_logged = 0;
    while (!atomic_load(&ev.stop)) {
        char err[512] = "";
        if (!s) s = follower_open(err, sizeof err);
        if (s && !ready) ready = follower_begin(s, &jc) == 0;
        if (!s || !ready) {
            int64_t now = mono_us();
            if (now - last_complaint > 60LL * 1000000) {
                last_complaint = now;
                log_msg(LOG_WARNING, "api", "events: the state-change journal cannot be followed (retrying): %s",
                        s ? store_last_error(s) : err);
            }
            if (!s) {
                pthread_mutex_lock(&ev.mu);
                snprintf(ev.why_not_ready, sizeof ev.why_not_ready, "the store is unavailable: %.200s", err);
                pthread_mutex_unlock(&ev.mu);
            }
            sleep_ms(500);
            continue;
        }
        StateEvent *e = NULL;
        size_t n = 0;
        if (store_journal_follow(s, &jc, util_now_us(), FOLLOW_BATCH, &e, &n) != 0) {
            int64_t now = mono_us();
            if (now - last_complaint > 60LL * 1000000) {
                last_complaint = now;
                log_msg(LOG_WARNING, "api", "events: cannot read the state-change journal (retrying): %s",
                        store_last_error(s));
            }
            sleep_ms(200);
            continue;
        }
        if (jc.skipped != skipped_logged) {
            log_msg(LOG_WARNING, "api",
                    "events: journal ids up to %lld never committed within %d ms (rolled back?): passed over "
                    "(%lld so far)",
                    (long long)jc.last_id, GAP_GRACE_US / 1000, (long long)jc.skipped);
            skipped_logged = jc.skipped;
        }
        int64_t now = mono_us();
        if (n > 0) {
            /* formatted before taking the lock the subscribers copy under */
            RingEv *fresh = xcalloc(n, sizeof *fresh);
            for (size_t i = 0; i < n; i++) {
                fresh[i].id = e[i].id;
                fresh[i].text = format_event(&e[i], &fresh[i].len);
                fresh[i].dag_id = e[i].dag_id, e[i].dag_id = NULL;
                fresh[i].run_id = e[i].run_id, e[i].run_id = NULL;
            }
            state_event_list_free(e, n);
            pthread_mutex_lock(&ev.mu);
            for (size_t i = 0; i < n; i++) ring_append_locked(&fresh[i]);
            ev.cursor = jc.last_id;
            pthread_mutex_unlock(&ev.mu);
            free(fresh);
            api_stream_wake();
            last_tick = now;
            if (n == FOLLOW_BATCH) continue; /* more to read now */
        } else {
            pthread_mutex_lock(&ev.mu);
            int clients = ev.clients;
            pthread_mutex_unlock(&ev.mu);
            /* streams only run when woken: wake them now and then for their keepalives */
            if (clients > 0 && now - last_tick >= TICK_US) {
                last_tick = now;
                api_stream_wake();
            }
        }
        char payload[64];
        int w = store_wait_change(s, POLL_MS, payload, sizeof payload);
        if (w < 0) sleep_ms(POLL_MS);
        while (w == 1 && (w = store_wait_change(s, 0, payload, sizeof payload)) == 1) {} /* a burst is one read */
    }
    store_free(s);
    return NULL;
}

int api_events_start(ApiContext *ctx, char *err, size_t errlen)
{
    pthread_mutex_lock(&ev.mu);
    if (ev.users++ > 0) { /* one follower per process, shared by its servers */
        pthread_mutex_unlock(&ev.mu);
        return 0;
    }
    ev.ctx = ctx;
    ev.head = ev.count = 0;
    ev.ready = 0;
    ev.clients = 0;
    ev.max_clients = (int)config_get_int(ctx->cfg, "api.events_max_clients");
    ev.keepalive_us = config_get_duration_us(ctx->cfg, "api.events_keepalive");
    snprintf(ev.why_not_ready, sizeof ev.why_not_ready, "the event follower is starting");
    pthread_mutex_unlock(&ev.mu);
    atomic_store(&ev.stop, 0);
    /* Find the end of the journal before the server takes requests, so that a subscriber
     * that comes at once starts at the right place; if the store is not there yet, the
     * follower keeps trying and subscribers get 503 until it succeeds. */
    char why[512];
    JournalCursor jc;
    Store *s = follower_open(why, sizeof why);
    if (!s)
        log_msg(LOG_WARNING, "api", "events: the store is unavailable (the follower will retry): %s", why);
    else
        follower_begin(s, &jc);
    if (pthread_create(&ev.thread, NULL, follower_main, s) != 0) {
        store_free(s);
        snprintf(err, errlen, "cannot start the event follower thread: %s", strerror(errno));
        pthread_mutex_lock(&ev.mu);
        ev.users = 0;
        ev.ready = 0;
        pthread_mutex_unlock(&ev.mu);
        return -1;
    }
    return 0;
}

void api_events_stop(void)
{
    pthread_mutex_lock(&ev.mu);
    if (ev.users == 0 || --ev.users > 0) {
        pthread_mutex_unlock(&ev.mu);
        return;
    }
    pthread_mutex_unlock(&ev.mu);
    atomic_store(&ev.stop, 1);
    pthread_join(ev.thread, NULL);
    pthread_mutex_lock(&ev.mu);
    ring_clear_locked();
    ev.ready = 0;
    pthread_mutex_unlock(&ev.mu);
}

/* ---- subscribers ---------------------------------------------------------------------------- */

typedef struct Sub {
    ApiContext *ctx;
    char *dag_id, *run_id;    /* filters; NULL = any */
    uint64_t next_seq;        /* the next ring entry to look at */
    int catching_up;          /* reading (after, until] from the store first */
    int64_t after, until;
    StrBuf out;               /* formatted, not yet sent */
    size_t sent;              /* of out */
    int64_t last_write;       /* mono_us of the last bytes handed to the server */
    int ending;               /* send what is in out, then end the stream */
    int64_t last_id;          /* the last event id sent (for the overflow message) */
} Sub;

static int sub_wants(const Sub *u, const char *dag_id, const char *run_id)
{
    if (u->dag_id && (!dag_id || strcmp(u->dag_id, dag_id) != 0)) return 0;
    if (u->run_id && (!run_id || strcmp(u->run_id, run_id) != 0)) return 0;
    return 1;
}

/* One page of the store's journal after u->after: 0 ok, -1 the store failed (end the
 * stream: the client reconnects with its Last-Event-ID and tries again). */
static int sub_catch_up(Sub *u)
{
    ApiReq fake;
    memset(&fake, 0, sizeof fake);
    fake.ctx = u->ctx;
    Store *s = api_store(&fake);
    StateEvent *e = NULL;
    size_t n = 0;
    if (!s || store_journal_since(s, u->after, CATCHUP_PAGE, &e, &n) != 0) {
        log_msg(LOG_WARNING, "api", "events: a subscriber catching up from id %lld lost the store: %s",
                (long long)u->after, s ? store_last_error(s) : "cannot connect");
        return -1;
    }
    for (size_t i = 0; i < n && e[i].id <= u->until; i++) {
        u->after = e[i].id;
        if (!sub_wants(u, e[i].dag_id, e[i].run_id)) continue;
        size_t len;
        char *text = format_event(&e[i], &len);
        sb_appendn(&u->out, text, len);
        free(text);
        u->last_id = e[i].id;
    }
    if (n < CATCHUP_PAGE || (n && e[n - 1].id >= u->until)) u->catching_up = 0;
    state_event_list_free(e, n);
    return 0;
}

/* Copy what the ring has for u, up to REFILL_BYTES. */
static void sub_from_ring(Sub *u)
{
    pthread_mutex_lock(&ev.mu);
    uint64_t oldest = ev.head - ev.count;
    if (u->next_seq < oldest) {
        /* a whole ring went by while this client was not reading */
        sb_printf(&u->out,
                  "event: overflow\ndata: {\"detail\": \"this client fell more than %d events behind; "
                  "reconnect with Last-Event-ID to read the rest from the store\", \"last_event_id\": %lld}\n\n",
                  RING_CAP, (long long)u->last_id);
        u->ending = 1;
    } else {
        while (u->next_seq < ev.head && u->out.len - u->sent < REFILL_BYTES) {
            const RingEv *r = &ev.ring[u->next_seq % RING_CAP];
            u->next_seq++;
            if (!sub_wants(u, r->dag_id, r->run_id)) continue;
            sb_appendn(&u->out, r->text, r->len);
            u->last_id = r->id;
        }
    }
    pthread_mutex_unlock(&ev.mu);
}

static long sub_stream(void *ud, char *buf, size_t max)
{
    Sub *u = ud;
    if (u->sent == u->out.len) {
        u->sent = 0;
        u->out.len = 0;
        if (u->out.s) u->out.s[0] = 0;
        if (u->ending) return -1;
        for (int pages = 0; u->catching_up && u->out.len == 0 && pages < 20; pages++)
            if (sub_catch_up(u) != 0) return -1;
        /* still catching up with nothing for this client's filter yet: a comment keeps the
         * server calling (returning 0 would park the stream until the next wake) */
        if (u->catching_up && u->out.len == 0) sb_append(&u->out, ": catching up\n\n");
        if (!u->catching_up && u->out.len == 0) sub_from_ring(u);
        int64_t now = mono_us();
        if (u->out.len == 0 && now - u->last_write >= ev.keepalive_us) sb_append(&u->out, ": keepalive\n\n");
        if (u->out.len == 0) return 0; /* nothing yet: the server waits for api_stream_wake */
    }
    size_t n = u->out.len - u->sent;
    if (n > max) n = max;
    memcpy(buf, u->out.s + u->sent, n);
    u->sent += n;
    u->last_write = mono_us();
    return (long)n;
}

static void sub_free(void *ud)
{
    Sub *u = ud;
    if (!u) return;
    pthread_mutex_lock(&ev.mu);
    ev.clients--;
    pthread_mutex_unlock(&ev.mu);
    free(u->dag_id);
    free(u->run_id);
    sb_free(&u->out);
    free(u);
}

static int parse_id(const char *s, int64_t *out)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    while (*end == ' ' || *end == '\t') end++;
    if (errno || *end || v < 0 || *s == '-' || *s == '+' || *s == ' ') return -1;
    *out = v;
    return 0;
}

static void h_events(ApiReq *r, ApiResp *out)
{
    int64_t after = -1;
    /* a reconnecting EventSource sends the URL it first used (which may say ?after=) and the
     * last id it saw in Last-Event-ID: the header is the newer word */
    const char *hdr = api_header(r, "Last-Event-ID");
    if (hdr && *hdr) {
        if (parse_id(hdr, &after) != 0) {
            api_error(out, 400, "Last-Event-ID must be an event id (a non-negative integer), got '%.64s'", hdr);
            return;
        }
    } else {
        long long v = 0;
        int got = api_query_int(r, out, "after", 0, INT64_MAX, &v);
        if (got < 0) return;
        if (got == 1) after = v;
    }
    const char *dag_id = api_query(r, "dag_id"), *run_id = api_query(r, "run_id");
    Sub *u = xcalloc(1, sizeof *u);
    u->ctx = r->ctx;
    u->dag_id = dag_id && *dag_id ? xstrdup(dag_id) : NULL;
    u->run_id = run_id && *run_id ? xstrdup(run_id) : NULL;
    pthread_mutex_lock(&ev.mu);
    if (!ev.ready) {
        char why[256];
        util_strlcpy(why, ev.why_not_ready, sizeof why);
        pthread_mutex_unlock(&ev.mu);
        free(u->dag_id), free(u->run_id), free(u);
        api_error(out, 503, "the event stream is unavailable: %s", why);
        return;
    }
    if (ev.clients >= ev.max_clients) {
        int max = ev.max_clients;
        pthread_mutex_unlock(&ev.mu);
        free(u->dag_id), free(u->run_id), free(u);
        api_error(out, 503, "too many event stream subscribers (api.events_max_clients = %d): try again later", max);
        out->extra_headers = xstrdup("Retry-After: 5\r\n");
        return;
    }
    ev.clients++;
    u->next_seq = ev.head;
    if (after >= 0) {
        u->last_id = after;
        if (after >= ev.evicted) {
            /* the ring holds everything after it: start at the first entry past it */
            uint64_t seq = ev.head - ev.count;
            while (seq < ev.head && ev.ring[seq % RING_CAP].id <= after) seq++;
            u->next_seq = seq;
        } else if (after < ev.cursor) {
            /* older than the ring: the store first, up to where the ring takes over */
            u->catching_up = 1;
            u->after = after;
            u->until = ev.cursor;
        }
    }
    pthread_mutex_unlock(&ev.mu);
    /* the reconnection delay, and a first line so that the client sees the stream open */
    sb_append(&u->out, "retry: 2000\n: connected\n\n");
    u->last_write = mono_us();
    out->status = 200;
    out->content_type = "text/event-stream";
    out->stream = sub_stream;
    out->stream_free = sub_free;
    out->stream_ud = u;
}

const ApiRoute api_routes_events[] = {
    {"GET", "/api/v2/gust/events", API_ROLE_VIEWER, h_events},
    {NULL, NULL, API_ROLE_NONE, NULL},
};
