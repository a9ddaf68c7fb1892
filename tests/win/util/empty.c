/* keeps aipc_testutil non-empty before any utility exists */
typedef int aipc_testutil_empty;
