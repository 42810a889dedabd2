/* tryops — the store's side of one worker try, in as few round trips as the invariants
 * allow (DESIGN.md, "the path of one task instance").
 *
 * A try used to cost: a read of the instance and of its run for the rate gate, the claim (a
 * transaction), the instance and the run read again, the XComs cleared (a transaction of their
 * own), log chunks, the finish (a transaction). Here the claim is one transaction that also
 * returns the claimed row and the run and clears the try's XComs; the rate gate reads nothing
 * (the caller decides from the claimed row, inside the transaction, and may undo the claim
 * before it commits); the last log chunk goes into the finish's transaction. The invariants are
 * store/ti.c's: the claim is conditional on (id, try_number, state 'queued'), the finish on
 * the try still running, and every change of state writes its journal row in its transaction.
 *
 * Ownership: TryClaim's rows are owned by it; try_claim_clear frees them. */
#ifndef GUST_STORE_TRYOPS_H
#define GUST_STORE_TRYOPS_H

#include <stddef.h>
#include <stdint.h>

#include "store/runs.h"
#include "store/store.h"
#include "store/ti.h"

typedef struct TryClaim {
    TaskInstance ti; /* the instance as the claim left it (running, this worker's) */
    DagRun run;      /* its run */
} TryClaim;

void try_claim_clear(TryClaim *c); /* frees the rows inside; accepts a zeroed claim */

/* Inside the claim's transaction, after the row was claimed: return 0 to commit the claim,
 * nonzero to undo it (the transaction is rolled back: nothing was claimed, nothing written).
 * It may run more than once (store_tx retries), and must not touch the store. */
typedef int (*TryClaimCheck)(void *ud, const TaskInstance *ti, const DagRun *run);

/* The claim (invariant 2), in one transaction: queued → running only on this try, who runs
 * it, the journal row, the try's outbox row dropped, the scheduler notified, the instance's
 * XComs cleared (a new try starts without the last one's), and the instance and its run read
 * back into *out. 1 won, 0 lost (another worker has it, it was cleared, or it does not exist:
 * s->err says which), 2 check said no (out holds the row as it would have been claimed; the
 * store is unchanged), -1 error. out is cleared first; try_claim_clear it after 1 and 2. */
int store_try_claim(Store *s, const char *ti_id, int try_number, const char *hostname, const char *worker_id, int pid,
                    TryClaimCheck check, void *check_ud, TryClaim *out);

/* The end of a try, in one transaction: log_tail (len bytes, may be 0) appended to the try's
 * log, then store_ti_finish (same arguments and results: 1 done, 0 refused, -1 error). */
int store_try_finish(Store *s, const char *ti_id, int try_number, TiState to, int64_t next_attempt_at,
                     const char *log_tail, size_t log_len);

/* A DAG version's document, read in pieces of at most chunk characters (so no single reply,
 * and no buffer of the connection, holds a large document whole), each handed to fn in order.
 * fn returns 0 to go on, -1 to stop. 1 read, 0 no such version, -1 error (or fn's -1). */
typedef int (*StoreChunkFn)(void *ud, const char *data, size_t len);
int store_dag_version_chunks(Store *s, const char *version_id, size_t chunk, StoreChunkFn fn, void *ud);

#endif
