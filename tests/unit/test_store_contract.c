/*
 * test_store_contract.c - the store's contract for messages, SMS,
 * callbacks, channels and cascades (store_contract.c) on SQLite; the same
 * functions run on PostgreSQL in test_store_pg_msg.c and
 * test_store_pg_casc.c.
 */
#include "kk_test.h"
#include "store_contract.h"

#define ON_SQLITE(name, call)                                                  \
  KK_TEST(name) {                                                              \
    struct sc_sq q;                                                            \
    sc_sqlite_open(&q);                                                        \
    call;                                                                      \
    sc_sqlite_close(&q);                                                       \
  }

ON_SQLITE(store_contract_sqlite_batch_insert_and_its_notes, sc_batch_insert_and_notes(&q.e, 200))
ON_SQLITE(store_contract_sqlite_batch_text_and_keys, sc_batch_text_and_keys(&q.e))
ON_SQLITE(store_contract_sqlite_vk_viber_sms, sc_cascade_vk_viber_sms(&q.e))
ON_SQLITE(store_contract_sqlite_early_receipt_and_status, sc_early_receipt_and_status(&q.e))
ON_SQLITE(store_contract_sqlite_sms_runs, sc_sms_runs(&q.e))
ON_SQLITE(store_contract_sqlite_cascade_runs, sc_cascade_runs(&q.e))
ON_SQLITE(store_contract_sqlite_step_timeout, sc_step_timeout(&q.e))
ON_SQLITE(store_contract_sqlite_cancel_scheduled, sc_cancel_scheduled(&q.e))
ON_SQLITE(store_contract_sqlite_sms_begin, sc_sms_begin(&q.e, &q.e))
ON_SQLITE(store_contract_sqlite_inbound_messages, sc_inbound(&q.e))
ON_SQLITE(store_contract_sqlite_outbox, sc_outbox(&q.e))
ON_SQLITE(store_contract_sqlite_rollback_and_idempotency, sc_rollback_and_idempotency(&q.e))
